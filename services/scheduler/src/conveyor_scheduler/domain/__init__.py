"""The scheduler's decisions, pure: `evolve` folds an event (or a clock `Tick`) into the state of every run in
progress, `decide` says what follows, `assign` leases a queued attempt to a runner. Clock and ids are injected."""

from conveyor_scheduler.domain.decide import decide, finished, settle
from conveyor_scheduler.domain.evolve import at, evolve, numbered
from conveyor_scheduler.domain.leases import assign
from conveyor_scheduler.domain.policy import Environment, Policy
from conveyor_scheduler.domain.rules import Concurrency, Retry
from conveyor_scheduler.domain.runs import Runs
from conveyor_scheduler.domain.state import EPOCH, JobState, RunState, SchedulerState, Tick, WorkflowState

__all__ = [
    "EPOCH",
    "Concurrency",
    "Environment",
    "JobState",
    "Policy",
    "Retry",
    "RunState",
    "Runs",
    "SchedulerState",
    "Tick",
    "WorkflowState",
    "assign",
    "at",
    "decide",
    "evolve",
    "finished",
    "numbered",
    "settle",
]
