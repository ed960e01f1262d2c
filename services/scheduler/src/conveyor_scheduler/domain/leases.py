"""Leases, the pure part: which queued attempt a runner that asks for work gets.

An attempt is offered to one runner only: once `JobAssigned` is folded in, the attempt is no longer free, and
a second `JobAssigned` for it changes nothing. A lease not renewed (`LeaseRenewed`) within the policy's lease
period expires; the clock then decides `JobLost` and the job's `retry:` policy decides what follows.
"""

from __future__ import annotations

from collections.abc import Iterable

from conveyor_events import JobAssigned

from conveyor_scheduler.domain.contexts import cancelled
from conveyor_scheduler.domain.state import SchedulerState


def assign(state: SchedulerState, runner_id: str, labels: Iterable[str], lease_id: str) -> JobAssigned | None:
    """The oldest free queued attempt whose `runs-on` labels the runner has, leased to it; None when none is.

    `lease_id` is injected (the handler derives it deterministically) so that the core stays pure.
    """
    offered = {label.lower() for label in labels}
    candidates = [
        (job.since, order, run.run_id, job.plan.job_id, job.attempt)
        for order, run in enumerate(state.runs.values())
        if run.request is not None and run.conclusion is None
        for job in run.jobs.values()
        if job.status == "queued"
        and job.runner_id is None
        and not (cancelled(run, job) and job.cancel_requested)
        and {label.lower() for label in job.plan.runs_on} <= offered
    ]
    if not candidates:
        return None
    _, _, run_id, job_id, attempt = min(candidates)
    return JobAssigned(run_id=run_id, job_id=job_id, attempt=attempt, runner_id=runner_id, lease_id=lease_id)
