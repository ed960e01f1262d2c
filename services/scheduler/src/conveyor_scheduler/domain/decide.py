"""`decide(state, event)`: what follows, given the state after the event, until nothing more does.

Decisions are made one step at a time and folded in before the next, in a fixed order of concerns: the clock
(deadlines, leases, wait timers), retries, cancellations, concurrency slots, then jobs whose turn has come,
then runs that are finished. Every decision changes the state, so the loop ends; the same state always
decides the same events, so a replay decides nothing new.
"""

from __future__ import annotations

from collections.abc import Callable

from conveyor_events import Event, RunCompleted, RunEvent

from conveyor_scheduler.domain import cancellation, clock, progress
from conveyor_scheduler.domain.conclusions import run_conclusion
from conveyor_scheduler.domain.concurrency import promote
from conveyor_scheduler.domain.evolve import evolve
from conveyor_scheduler.domain.state import RunState, SchedulerState, Tick

_LIMIT = 100_000
Phase = Callable[[SchedulerState, RunState], list[RunEvent]]
_BEFORE_SLOTS: tuple[Phase, ...] = (clock.deadlines, progress.retries, cancellation.cancellations)


def decide(state: SchedulerState, event: Event | Tick) -> list[RunEvent]:
    """The events that follow from `event` (already folded into `state`), for every run it affects.

    A run's event is decided over that run and the runs decisions reach (a concurrency group spans runs), not
    over every run held: with thousands of runs in progress an event costs the same as with one. The clock's
    `Tick` looks at every run.
    """
    return settle(state, event)[1]


def settle(state: SchedulerState, event: Event | Tick) -> tuple[SchedulerState, list[RunEvent]]:
    """`decide`, with the state after its decisions are folded in: the state `evolve` gives from them in turn,
    already computed while deciding, so the handler need not fold them a second time."""
    scope: dict[str, None] | None = None
    if not isinstance(event, Tick):
        scope = {event.run_id: None} if isinstance(event, RunEvent) else {}
    produced: list[RunEvent] = []
    for _ in range(_LIMIT):
        step = _next(state, scope)
        if not step:
            return state, produced
        for decision in step:
            state = evolve(state, decision)
            if scope is not None:
                scope[decision.run_id] = None
        produced.extend(step)
    raise RuntimeError("the scheduler's decisions did not settle")  # a bug in the core, never bad input


def _next(state: SchedulerState, scope: dict[str, None] | None) -> list[RunEvent]:
    if scope is None:
        runs = list(state.runs.values())
    else:
        held = state.runs.get
        runs = [run for key in scope if (run := held(key)) is not None]
    live = [run for run in runs if run.request is not None and run.conclusion is None]
    for phase in _BEFORE_SLOTS:
        for run in live:
            if decided := phase(state, run):
                return decided
    if (scope is None or _any_in_a_group(runs)) and (decided := promote(state)):
        return decided
    for run in live:
        if decided := progress.advance(state, run):
            return decided
    for run in live:
        if finished(run):
            return [RunCompleted(run_id=run.run_id, conclusion=run_conclusion(run))]
    return []


def _any_in_a_group(runs: list[RunState]) -> bool:
    # loops rather than any() over generators: asked on every decision
    for run in runs:
        for holder in (run.workflows, run.jobs, run.calls):
            for each in holder.values():
                if each.group:
                    return True
    return False


def finished(run: RunState) -> bool:
    """Every workflow of the run is accounted for and every job has completed."""
    if run.workflows_expected is None or len(run.workflows_seen) < run.workflows_expected:
        return False
    for job in run.jobs.values():  # noqa: SIM110 (a loop rather than all() over a generator: asked on every decision)
        if job.status != "completed":
            return False
    return True
