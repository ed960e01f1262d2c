"""The scheduler's state: every run in progress, its workflows and jobs, and the clock as last fed."""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from datetime import UTC, datetime
from functools import cached_property
from typing import Any, Literal, TypeVar

from conveyor_events import CallLevel, Conclusion, JobPlanned, RunRequested

from conveyor_scheduler.domain.policy import Policy
from conveyor_scheduler.domain.runs import Runs

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
"""The clock before the first `Tick`: tests that do not care about time still decide deterministically."""

JobStatus = Literal["pending", "waiting", "approval", "timer", "queued", "running", "completed"]
"""pending: needs, `if:` or max-parallel not through yet · waiting: for a concurrency slot · approval: for a
reviewer · timer: for the environment's wait timer · queued: for a runner · running · completed."""
ACTIVE: frozenset[JobStatus] = frozenset({"waiting", "approval", "timer", "queued", "running"})
FailureKind = Literal["step", "infrastructure", "timeout", "cancelled", "rejected", "scheduler"]


_Record = TypeVar("_Record")
_FIELDS: dict[type, frozenset[str]] = {}


def changed(record: _Record, **changes: Any) -> _Record:
    """`dataclasses.replace` for the state's frozen records, without re-running `__init__`: the state changes
    on every event, and its records have no validation or `__post_init__` to re-run. A job's cached `key` is
    dropped with its old `plan`."""
    kind = type(record)
    names = _FIELDS.get(kind)
    if names is None:
        names = _FIELDS[kind] = frozenset(item.name for item in fields(kind))  # type: ignore[arg-type]
    if not names.issuperset(changes):
        raise TypeError(f"{kind.__name__} has no field {sorted(set(changes) - names)}")
    copy = object.__new__(kind)
    attributes = copy.__dict__
    attributes.update(record.__dict__)
    attributes.update(changes)
    if "plan" in changes:
        attributes.pop("key", None)
    return copy


@dataclass(frozen=True)
class Tick:
    """The clock as the handler reads it: fed before each event (the envelope's time) and by a timer."""

    now: datetime


@dataclass(frozen=True)
class JobState:
    plan: JobPlanned
    status: JobStatus = "pending"
    attempt: int = 0
    """The latest attempt queued (0: none yet)."""
    first_attempt: int = 1
    """The first attempt of the current run attempt: retries are counted from here."""
    conclusion: Conclusion | None = None
    failure: FailureKind | None = None
    outputs: dict[str, str] = field(default_factory=dict)
    since: datetime = EPOCH
    """When the job entered its status: deadlines are measured from here."""
    group: str | None = None
    """The concurrency group the job waits for or holds."""
    slots: int = 1
    holds: bool = False
    """The job holds a slot in `group` (from `ConcurrencyAcquired` until it completes)."""
    cancel_reason: str | None = None
    """Set when the job gave way in its concurrency group."""
    approved: bool = False
    reviewers: tuple[str, ...] = ()
    timer_until: datetime | None = None
    runner_id: str | None = None
    lease_id: str | None = None
    lease_until: datetime | None = None
    cancel_requested: bool = False
    """A `JobCancelRequested` was sent for the current attempt."""
    timed_out: bool = False
    """A `JobTimedOut` was sent while a runner ran the current attempt: it stops it and reports the end."""

    @classmethod
    def planned(cls, plan: JobPlanned) -> JobState:
        """`JobState(plan)`, made as `changed` makes copies, from the defaults of the fields: a frozen dataclass's
        `__init__` sets its 21 fields one call at a time, and every job of every run is made here."""
        job = object.__new__(cls)
        attributes = job.__dict__
        attributes.update(_PENDING)
        attributes["plan"] = plan
        attributes["outputs"] = {}
        return job

    @cached_property
    def key(self) -> tuple[str, ...]:
        """The job as written in the workflow: every matrix leg shares it, and a called job's legs share it
        within one call (one matrix leg of the caller) only. Read for every job on every decision, so kept."""
        return (self.plan.workflow, self.plan.job_key, *(frame.job_id for frame in self.plan.call))


_PENDING: dict[str, Any] = {item.name: item.default for item in fields(JobState)}
"""A new job's fields in their order with their defaults; `plan` and `outputs`, which have none, are set by
`JobState.planned` (a test holds it to the dataclass's own `__init__`)."""


@dataclass(frozen=True)
class WorkflowState:
    """Workflow-level concurrency: `none` (no group or not yet evaluated), waiting, holding, or cancelled; a
    call's concurrency is kept the same way."""

    status: Literal["none", "waiting", "holding", "free"] = "none"
    name: str = ""
    """The workflow's `name:` (its path when it has none), what `github.workflow` reads."""
    number: int = 0
    """`github.run_number`; 0 until the scheduler numbered the workflow (`RunNumbered`)."""
    run_name: str | None = None
    """The workflow's `run-name:`, unevaluated."""
    group: str | None = None
    slots: int = 1
    since: datetime = EPOCH
    cancelled: bool = False
    concurrency: Any = None


@dataclass(frozen=True)
class RunState:
    run_id: str
    request: RunRequested | None = None
    started_at: datetime = EPOCH
    attempt: int = 1
    workflows_expected: int | None = None
    workflows_seen: frozenset[str] = frozenset()
    rejected: bool = False
    planned: frozenset[str] = frozenset()
    workflows: dict[str, WorkflowState] = field(default_factory=dict)
    jobs: dict[str, JobState] = field(default_factory=dict)
    calls: dict[tuple[str, CallLevel], WorkflowState] = field(default_factory=dict)
    """The concurrency of each call of a reusable workflow whose calling job or called workflow has a
    `concurrency:`, by the calling job's leg (`CallFrame.job_id`) and which of the two, kept as a workflow's is."""
    expanded: dict[str, tuple[str, ...]] = field(default_factory=dict)
    """Jobs whose matrix was computed from expressions, each replaced by its legs (see `matrices`)."""
    cancel_requested: bool = False
    timed_out: bool = False
    conclusion: Conclusion | None = None

    def job(self, job_id: str, **changes: Any) -> RunState:
        return changed(self, jobs={**self.jobs, job_id: changed(self.jobs[job_id], **changes)})

    def workflow(self, path: str, **changes: Any) -> RunState:
        current = self.workflows.get(path, WorkflowState())
        return changed(self, workflows={**self.workflows, path: changed(current, **changes)})

    def call(self, call_id: str, level: CallLevel, **changes: Any) -> RunState:
        current = self.calls.get((call_id, level), WorkflowState())
        return changed(self, calls={**self.calls, (call_id, level): changed(current, **changes)})


@dataclass(frozen=True)
class SchedulerState:
    """Every run the scheduler drives. Concurrency groups span runs; they are read from the runs' jobs and
    workflows (see `concurrency.groups`), so rebuilding a run from its stream also restores its places."""

    runs: Runs = field(default_factory=Runs)
    """Shared with the states before and after this one where they hold the same runs (see `Runs`)."""
    now: datetime = EPOCH
    policy: Policy = field(default_factory=Policy)
    numbers: dict[tuple[str, str], int] = field(default_factory=dict)
    """The last run number given to each workflow of each repository (`RunNumbered`): kept when its runs end."""

    def __post_init__(self) -> None:
        if not isinstance(self.runs, Runs):
            object.__setattr__(self, "runs", Runs(self.runs))

    def run(self, run_id: str) -> RunState:
        return self.runs.get(run_id) or RunState(run_id=run_id)

    def with_run(self, run: RunState) -> SchedulerState:
        return changed(self, runs=self.runs.set(run.run_id, run))

    def without_run(self, run_id: str) -> SchedulerState:
        return changed(self, runs=self.runs.remove(run_id))
