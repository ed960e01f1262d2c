"""Runners: machines that registered to take jobs, and when they were last heard from.

These events live on the `runners` stream; what a runner does with a job (`JobAssigned`, `LeaseRenewed`,
`JobStarted` …) stays on the job's run.
"""

from __future__ import annotations

from pydantic import Field

from conveyor_events._base import Event

RUNNERS_STREAM = "runners"
"""The stream every runner's registration and sightings are appended to."""


class RunnerRegistered(Event):
    """A runner joined: from now on it may lease jobs whose `runs-on` labels it has.

    Labels are compared case-insensitively; the label `*` takes a job with any labels.
    """

    runner_id: str
    name: str
    labels: list[str] = Field(default_factory=list)


class RunnerSeen(Event):
    """The runner asked for work: it is alive even while it holds no lease to renew."""

    runner_id: str
