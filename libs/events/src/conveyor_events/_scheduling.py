"""The scheduler's events beyond `needs` order: cancellation, timeouts, leases, retries, concurrency, approvals.

Every class is schema version 1. A `job_id`/`attempt` pair names one attempt of one job; a run's jobs are
re-run as new attempts, so a fact about an old attempt never touches a newer one.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import Field

from conveyor_events._base import RunEvent

CallLevel = Literal["caller", "workflow"]
"""Which `concurrency:` of a call of a reusable workflow: its calling job's, or the called workflow's own."""


class JobCancelRequested(RunEvent):
    """The scheduler asks the runner holding this attempt to stop it; the runner answers with `JobCompleted`."""

    job_id: str
    attempt: int = 1
    reason: str = ""
    """Why: the run was cancelled, a matrix leg failed (`fail-fast`), or a newer run took the concurrency group."""


class JobTimedOut(RunEvent):
    """The attempt outlived a deadline and failed; a runner still executing it must stop.

    `phase` says which deadline: `running` (the job's `timeout-minutes`, 360 by default), `queued` (no runner
    started it within the queue limit, 24 hours by default) or `approval` (no reviewer answered in 30 days).
    """

    job_id: str
    attempt: int = 1
    phase: Literal["queued", "running", "approval"] = "running"
    deadline: datetime
    """The instant the limit was reached."""
    limit_minutes: float
    """The limit that applied, in minutes."""


class JobLost(RunEvent):
    """The attempt ended without a result because of the infrastructure, not the job's steps.

    The scheduler appends it when a lease expires; a runner appends it when it could not start the job (its
    container or pod failed to start). The job's `retry` policy decides whether a new attempt is queued.
    """

    job_id: str
    attempt: int = 1
    runner_id: str | None = None
    """The runner that held the attempt, when one did."""
    lease_id: str | None = None
    """The lease that expired, when the loss is a lease expiry."""
    reason: str = ""


class LeaseRenewed(RunEvent):
    """The runner holding a lease heartbeated: the lease lives on for another lease period from now."""

    job_id: str
    attempt: int = 1
    lease_id: str
    """The lease the runner holds; a renewal of any other lease changes nothing."""


class RunTimedOut(RunEvent):
    """The run outlived the longest time a run may take (35 days, as on GitHub) and is being cancelled."""

    deadline: datetime
    """The instant the limit was reached."""


class RunRerunRequested(RunEvent):
    """Someone asked a completed run to run again as a new run attempt.

    `mode="failed"` re-runs the jobs that failed or were cancelled and every job that depends on them; the
    others keep their results and outputs. `mode="all"` re-runs every job.
    """

    mode: Literal["failed", "all"] = "failed"
    requested_by: str = ""


class ConcurrencyWaited(RunEvent):
    """A workflow of the run (`job_id` is None) or one job waits for a slot in a concurrency group."""

    workflow: str
    """The workflow file the waiting workflow or job belongs to."""
    job_id: str | None = None
    group: str
    """The evaluated group name, lower-cased: GitHub compares group names case-insensitively."""
    since: datetime
    """When it began to wait; waiters are served in this order."""
    slots: int = 1
    """How many entries may hold the group at once (Conveyor's `max-in-progress`; 1 on GitHub)."""
    call: CallLevel | None = None
    """Set when `job_id` names a call of a reusable workflow (its calling job's leg, `CallFrame.job_id`), whose
    jobs hold the group together: `caller` for the calling job's `concurrency:`, `workflow` for the called
    workflow's own."""


class ConcurrencyAcquired(RunEvent):
    """A workflow of the run (`job_id` is None) or one job holds a slot in a concurrency group.

    A job holds it until it completes; a workflow until all its jobs have.
    """

    workflow: str
    job_id: str | None = None
    group: str
    call: CallLevel | None = None
    """Set when `job_id` names a call of a reusable workflow (its calling job's leg, `CallFrame.job_id`), whose
    jobs hold the group together: `caller` for the calling job's `concurrency:`, `workflow` for the called
    workflow's own."""


class ConcurrencyCancelled(RunEvent):
    """A workflow (`job_id` is None) or job gave way in its concurrency group and is being cancelled.

    `reason` is `superseded` when a newer waiter replaced it as the one pending entry, `cancel-in-progress`
    when a newer entry with `cancel-in-progress: true` arrived while it held the group, `queue-full` when it
    arrived at a `queue: max` group whose queue already held its limit of pending entries, or `deadlock` when
    its own workflow (or the call it runs within) held the group it asked for.
    """

    workflow: str
    job_id: str | None = None
    group: str
    reason: Literal["superseded", "cancel-in-progress", "queue-full", "deadlock"]
    call: CallLevel | None = None
    """Set when `job_id` names a call of a reusable workflow (its calling job's leg, `CallFrame.job_id`), whose
    jobs hold the group together: `caller` for the calling job's `concurrency:`, `workflow` for the called
    workflow's own."""


class ApprovalRequested(RunEvent):
    """The job deploys to an environment with required reviewers: it waits until one of them answers."""

    job_id: str
    attempt: int = 1
    environment: str
    reviewers: list[str] = Field(default_factory=list)
    """Who may approve or reject; one answer is enough. Empty means anyone may."""


class ApprovalGranted(RunEvent):
    """A reviewer approved the job's deployment to its environment."""

    job_id: str
    attempt: int = 1
    environment: str = ""
    approver: str
    comment: str = ""


class ApprovalRejected(RunEvent):
    """A reviewer rejected the job's deployment: the job fails, and with it the run."""

    job_id: str
    attempt: int = 1
    environment: str = ""
    approver: str
    comment: str = ""


class WaitTimerStarted(RunEvent):
    """The job's environment has a wait timer: the job is queued once the clock passes `until`."""

    job_id: str
    attempt: int = 1
    environment: str
    until: datetime


class MatrixExpanded(RunEvent):
    """A job whose matrix is computed from expressions was expanded, once the jobs it needs had finished.

    `job_id` is the job as planned (unexpanded); it is replaced by `legs`, each planned by a `JobPlanned` that
    follows, and a job that needed it needs every leg. A matrix that cannot be expanded is no `MatrixExpanded`:
    the job fails (`JobCompleted` with the reason) instead.
    """

    job_id: str
    matrix: dict[str, Any] = Field(default_factory=dict)
    """The matrix its expressions evaluated to."""
    legs: list[str] = Field(default_factory=list)
    """The legs' job ids, in the order GitHub runs them."""


class RunNumbered(RunEvent):
    """A workflow of the run got its run number: `github.run_number`, counted per workflow file of a repository
    from 1 for its first run, as on GitHub. A re-run keeps the number."""

    workflow: str
    repository: str
    """The repository as `github.repository` names it: the numbers of its workflows are counted apart."""
    number: int
    title: str = ""
    """The run's name as GitHub shows it: the workflow's `run-name:` evaluated, else what the event says (a push's
    head commit message, a pull request's title), else the workflow's name."""
