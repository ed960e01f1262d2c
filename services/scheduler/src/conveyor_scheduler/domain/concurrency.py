"""Concurrency groups across runs of a repository: who holds a group, who waits for it, and what an entrant causes.

Groups are read from the runs' workflows and jobs rather than kept apart, so a run rebuilt from its stream
brings its places back with it. GitHub's rule: one holder and one pending entry; a newer pending entry
replaces (cancels) the older, and `cancel-in-progress` cancels the holder. With `queue: max` up to
`MAX_PENDING` entries wait in FIFO order and one arriving at a full queue is cancelled. With Conveyor's
`max-in-progress: N` N entries hold the group and the others wait in FIFO order. An entry is a workflow, a job,
or a call of a reusable workflow, whose jobs hold the group together until the last of them completes.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from conveyor_events import CallLevel, ConcurrencyAcquired, ConcurrencyCancelled, ConcurrencyWaited, RunEvent

from conveyor_scheduler.domain.rules import Concurrency
from conveyor_scheduler.domain.state import RunState, SchedulerState

MAX_PENDING = 100
"""How many entries a `queue: max` group keeps waiting, as on GitHub."""


@dataclass(frozen=True)
class Entry:
    run_id: str
    workflow: str
    job_id: str | None
    since: datetime
    slots: int = 1
    cancelled: bool = False
    call: CallLevel | None = None
    """Set when `job_id` is a call's (its calling job's leg): the call's jobs hold the group together."""


@dataclass
class Group:
    holders: list[Entry] = field(default_factory=list)
    waiters: list[Entry] = field(default_factory=list)


GroupKey = tuple[str, str]
"""A group as GitHub scopes it: the repository (as `github.repository` names it) and the group's name."""


def groups(state: SchedulerState) -> dict[GroupKey, Group]:
    """Every group in use, its waiters in the order they are served."""
    found: dict[GroupKey, Group] = {}
    for run in state.runs.values():
        if run.request is not None and run.conclusion is None:
            _add_run(found, run)
    for group in found.values():
        group.waiters.sort(key=lambda entry: (entry.since, entry.run_id, entry.job_id or ""))
    return found


def _add_run(found: dict[GroupKey, Group], run: RunState) -> None:
    assert run.request is not None
    repository = run.request.github_repository
    for path, workflow in run.workflows.items():
        if not workflow.group:
            continue
        entry = Entry(run.run_id, path, None, workflow.since, workflow.slots, workflow.cancelled)
        if workflow.status == "holding" and any(
            job.status != "completed" for job in run.jobs.values() if job.plan.workflow == path
        ):
            found.setdefault((repository, workflow.group), Group()).holders.append(entry)
        elif workflow.status == "waiting" and not workflow.cancelled and not run.cancel_requested:
            found.setdefault((repository, workflow.group), Group()).waiters.append(entry)
    for (call_id, level), call in run.calls.items():
        if not call.group:
            continue
        members = [job for job in run.jobs.values() if any(frame.job_id == call_id for frame in job.plan.call)]
        entry = Entry(run.run_id, members[0].plan.workflow if members else "", call_id, call.since, call.slots,
                      call.cancelled, call=level)
        if call.status == "holding" and any(job.status != "completed" for job in members):
            found.setdefault((repository, call.group), Group()).holders.append(entry)
        elif call.status == "waiting" and not call.cancelled and not run.cancel_requested:
            found.setdefault((repository, call.group), Group()).waiters.append(entry)
    for job in run.jobs.values():
        if not job.group or job.status == "completed":
            continue
        entry = Entry(run.run_id, job.plan.workflow, job.plan.job_id, job.since, job.slots, bool(job.cancel_reason))
        if job.holds:
            found.setdefault((repository, job.group), Group()).holders.append(entry)
        elif job.status == "waiting" and not entry.cancelled:
            # in a cancelled run only a job that carries on (`always()`) is still waiting
            found.setdefault((repository, job.group), Group()).waiters.append(entry)


def enter(
    state: SchedulerState,
    run_id: str,
    workflow: str,
    job_id: str | None,
    rule: Concurrency,
    *,
    call: CallLevel | None = None,
) -> list[RunEvent]:
    """What follows when a workflow (`job_id` None), a job or a call (`call` says which of its concurrencies)
    asks for a slot in `rule.group` of its run's repository."""
    run = state.run(run_id)
    assert run.request is not None
    group = groups(state).get((run.request.github_repository, rule.group), Group())
    enclosing = _enclosing(run, job_id, call)
    if any(entry.run_id == run_id and (entry.job_id, entry.call) in enclosing for entry in group.holders):
        # its own workflow or call holds the group and waits for it: GitHub cancels rather than wait forever
        return [ConcurrencyCancelled(run_id=run_id, workflow=workflow, job_id=job_id, group=rule.group,
                                     reason="deadlock", call=call)]
    if len(group.holders) < rule.slots and not group.waiters:
        return [ConcurrencyAcquired(run_id=run_id, workflow=workflow, job_id=job_id, group=rule.group, call=call)]
    decided: list[RunEvent] = []
    if rule.cancel_in_progress:
        decided += [_cancel(entry, rule.group, "cancel-in-progress") for entry in group.holders if not entry.cancelled]
    if rule.max_in_progress is None and rule.queue == "single":
        decided += [_cancel(entry, rule.group, "superseded") for entry in group.waiters]
    waited = ConcurrencyWaited(
        run_id=run_id, workflow=workflow, job_id=job_id, group=rule.group, since=state.now, slots=rule.slots,
        call=call,
    )
    if rule.queue == "max" and len(group.waiters) >= MAX_PENDING:
        full = ConcurrencyCancelled(
            run_id=run_id, workflow=workflow, job_id=job_id, group=rule.group, reason="queue-full", call=call
        )
        return [*decided, waited, full]
    return [*decided, waited]


def _enclosing(run: RunState, job_id: str | None, call: CallLevel | None) -> set[tuple[str | None, CallLevel | None]]:
    """The entries (`job_id`, `call`) of the run that hold a slot for the entrant's jobs while they run: its
    workflow's, and those of the calls it runs within (a called workflow's own within its caller's)."""
    if job_id is None:
        return set()
    found: set[tuple[str | None, CallLevel | None]] = {(None, None)}
    if call is not None:
        member = next((job for job in run.jobs.values() if any(f.job_id == job_id for f in job.plan.call)), None)
    else:
        member = run.jobs.get(job_id)
    for frame in member.plan.call if member is not None else ():
        if frame.job_id == job_id:
            if call == "workflow":
                found.add((frame.job_id, "caller"))
            break
        found.update({(frame.job_id, "caller"), (frame.job_id, "workflow")})
    return found


def promote(state: SchedulerState) -> list[RunEvent]:
    """The first waiter of a group with a free slot acquires it."""
    for (_, name), group in sorted(groups(state).items()):
        if group.waiters and len(group.holders) < group.waiters[0].slots:
            first = group.waiters[0]
            return [ConcurrencyAcquired(run_id=first.run_id, workflow=first.workflow, job_id=first.job_id, group=name,
                                        call=first.call)]
    return []


def _cancel(entry: Entry, group: str, reason: str) -> ConcurrencyCancelled:
    return ConcurrencyCancelled(
        run_id=entry.run_id,
        workflow=entry.workflow,
        job_id=entry.job_id,
        group=group,
        reason="superseded" if reason == "superseded" else "cancel-in-progress",
        call=entry.call,
    )
