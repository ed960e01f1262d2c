"""Triggers Conveyor raises itself: the cron schedules (`on.schedule`) of registered repositories.

Each schedule — one cron of one workflow file of one repository — has its own stream. What is on it says how
far the schedule has been dealt with, so a restarted trigger, or a second one on the same log, knows which
ticks have fired: a tick fires only when its `ScheduleFired` can be appended at the version the trigger read.
"""

from __future__ import annotations

from pydantic import AwareDatetime

from conveyor_events._base import Event


class ScheduleFound(Event):
    """A trigger saw this cron of this workflow for the first time, at `at`: no tick up to then ever fires.

    Without it, a schedule added to a workflow long after the repository was registered would catch up on
    ticks from before it existed; recorded, the baseline survives restarts.
    """

    repository: str
    """The name the repository is registered under."""
    workflow: str
    """The workflow file's path in the repository, e.g. `.github/workflows/nightly.yml`."""
    cron: str
    """The cron expression as the workflow writes it (5 fields, UTC)."""
    at: AwareDatetime


class ScheduleFired(Event):
    """The tick `tick` of this cron of this workflow requested the run `run_id`; ticks up to it are done."""

    repository: str
    """The name the repository is registered under."""
    workflow: str
    """The workflow file's path in the repository, e.g. `.github/workflows/nightly.yml`."""
    cron: str
    """The cron expression as the workflow writes it (5 fields, UTC)."""
    tick: AwareDatetime
    run_id: str
