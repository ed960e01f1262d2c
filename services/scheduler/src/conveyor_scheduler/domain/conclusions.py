"""Conclusions as GitHub computes them: of a job (after `continue-on-error`), of a matrix, and of the run."""

from __future__ import annotations

from conveyor_events import Conclusion
from conveyor_workflow import Status

from conveyor_scheduler.domain import rules
from conveyor_scheduler.domain.contexts import ancestors, cancelled, job_contexts
from conveyor_scheduler.domain.state import JobState, RunState


def effective(run: RunState, job: JobState) -> Conclusion | None:
    """The job's conclusion as its dependants and the run see it: a failure of a job with
    `continue-on-error: true` counts as a success (the job itself still shows that it failed)."""
    if job.conclusion == Conclusion.FAILURE and continues_on_error(run, job):
        return Conclusion.SUCCESS
    return job.conclusion


def continues_on_error(run: RunState, job: JobState) -> bool:
    raw = job.plan.spec.get("continue_on_error", False)
    if isinstance(raw, bool):
        return raw
    return rules.continue_on_error(job.plan.spec, job_contexts(run, job, {}))


def combined(conclusions: list[Conclusion]) -> Conclusion:
    """The result of a matrix job from its legs' results: the worst of them."""
    for worst in (Conclusion.FAILURE, Conclusion.CANCELLED, Conclusion.SUCCESS):
        if worst in conclusions:
            return worst
    return Conclusion.SKIPPED


def status(run: RunState, job: JobState) -> Status:
    """What success(), failure() and cancelled() see: cancelled when the run was, failure when a job it
    depends on failed, skipped (all three false) when one was skipped.

    A called job depends only on the jobs of its own call: its caller's needs gate the call through the
    caller's `if:` (see `calls.closed_call`).
    """
    if cancelled(run, job):
        return "cancelled"
    found = [run.jobs[ancestor] for ancestor in ancestors(run, job)]
    if not job.plan.call:  # a job of the triggered workflow: every ancestor counts
        return status_over(run, found)
    within = [frame.job_id for frame in job.plan.call]
    return status_over(run, [other for other in found if [f.job_id for f in other.plan.call[: len(within)]] == within])


def status_over(run: RunState, ancestors: list[JobState]) -> Status:
    """The status that `ancestors` (completed) give a job that depends on them, the run not being cancelled."""
    conclusions = {effective(run, ancestor) for ancestor in ancestors}
    if Conclusion.FAILURE in conclusions or Conclusion.CANCELLED in conclusions:
        return "failure"
    if conclusions - {Conclusion.SUCCESS}:
        return "skipped"
    return "success"


def run_conclusion(run: RunState) -> Conclusion:
    """failure when the run was rejected or a job failed (after `continue-on-error`); skipped when nothing was
    triggered; cancelled when it was cancelled (by someone, its concurrency group or its time limit) or a job
    was; success otherwise."""
    conclusions = {effective(run, job) for job in run.jobs.values()}
    if run.rejected or Conclusion.FAILURE in conclusions:
        return Conclusion.FAILURE
    if run.workflows_expected == 0 and not run.jobs:
        return Conclusion.SKIPPED  # nothing was triggered
    workflows_cancelled = any(workflow.cancelled for workflow in run.workflows.values())
    if run.cancel_requested or workflows_cancelled or Conclusion.CANCELLED in conclusions:
        return Conclusion.CANCELLED
    return Conclusion.SUCCESS
