"""GitHub's scheduling rules in the pure core: fail-fast, max-parallel, continue-on-error, concurrency groups,
timeouts, cancellation, retries, re-runs, environments and leases."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any, Literal

import pytest
from conveyor_events import (
    ApprovalGranted,
    ApprovalRejected,
    Conclusion,
    Event,
    JobAssigned,
    JobCompleted,
    JobLost,
    JobPlanned,
    JobQueued,
    JobStarted,
    LeaseRenewed,
    RunCancelRequested,
    RunCompleted,
    RunEvent,
    RunNumbered,
    RunPlanned,
    RunRequested,
    RunRerunRequested,
)
from conveyor_scheduler.domain import Environment, Policy, SchedulerState, Tick, assign, decide, evolve
from conveyor_scheduler.domain.concurrency import MAX_PENDING

T0 = datetime(2026, 1, 1, tzinfo=UTC)


def request(run: str) -> RunRequested:
    return RunRequested(run_id=run, repository="o/r", ref="refs/heads/main", sha="a" * 40)


def job(run: str, key: str, needs: tuple[str, ...] = (), leg: int | None = None, **spec: Any) -> JobPlanned:
    job_id = f"ci.{key}" if leg is None else f"ci.{key}.{leg}"
    return JobPlanned(run_id=run, job_id=job_id, workflow="ci.yml", job_key=key, name=job_id, needs=list(needs),
                      runs_on=["linux"], spec=spec, matrix=None if leg is None else {"n": leg})


def matrix(run: str, key: str, legs: int, **spec: Any) -> list[JobPlanned]:
    return [job(run, key, leg=leg, **spec) for leg in range(1, legs + 1)]


class Scheduler:
    """Feeds events (after a tick at the current time) and collects what the core decides; `plan` checks that
    each new run of the workflow is numbered first, one more than the one before."""

    def __init__(self, policy: Policy | None = None) -> None:
        self.state = SchedulerState(policy=policy or Policy(), now=T0)
        self.decided: list[RunEvent] = []
        self.runs = 0

    def feed(self, *events: Event | Tick) -> list[RunEvent]:
        produced: list[RunEvent] = []
        for event in events:
            self.state = evolve(self.state, event)
            decisions = decide(self.state, event)
            for decision in decisions:
                self.state = evolve(self.state, decision)
            produced.extend(decisions)
        self.decided.extend(produced)
        return produced

    def plan(self, run: str, *jobs: JobPlanned, concurrency: Any = None) -> list[RunEvent]:
        extra = {"concurrency": concurrency} if concurrency else {}
        planned = RunPlanned(run_id=run, workflow="ci.yml", workflow_name="CI", index=1, count=1,
                             jobs=[j.job_id for j in jobs], **extra)
        numbered, *decided = self.feed(request(run), *jobs, planned)
        self.runs += 1
        assert numbered == RunNumbered(run_id=run, workflow="ci.yml", repository="o/r", number=self.runs, title="CI")
        return decided

    def at(self, minutes: float) -> list[RunEvent]:
        return self.feed(Tick(T0 + timedelta(minutes=minutes)))

    def start(self, run: str, job_id: str, attempt: int = 1) -> list[RunEvent]:
        return self.feed(JobStarted(run_id=run, job_id=job_id, attempt=attempt, runner_id="r"))

    def end(
        self, run: str, job_id: str, conclusion: Conclusion = Conclusion.SUCCESS, attempt: int = 1
    ) -> list[RunEvent]:
        return self.feed(JobCompleted(run_id=run, job_id=job_id, attempt=attempt, conclusion=conclusion))

    def job(self, run: str, job_id: str) -> Any:
        return self.state.runs[run].jobs[job_id]


def kinds(events: list[RunEvent]) -> list[tuple[str, str]]:
    return [(type(e).__name__, str(getattr(e, "job_id", None) or getattr(e, "conclusion", ""))) for e in events]


def completed(events: list[RunEvent]) -> Conclusion | None:
    return next((e.conclusion for e in events if isinstance(e, RunCompleted)), None)


# fail-fast and continue-on-error ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("strategy", "continue_on_error", "expected"),
    [
        ({}, False, [("JobCancelRequested", "ci.t.2"), ("JobCompleted", "ci.t.3")]),
        ({"fail-fast": True}, False, [("JobCancelRequested", "ci.t.2"), ("JobCompleted", "ci.t.3")]),
        ({"fail-fast": False}, False, []),
        ({}, True, []),
        ({}, "${{ matrix.n == 1 }}", []),
        ({}, "${{ matrix.n == 2 }}", [("JobCancelRequested", "ci.t.2"), ("JobCompleted", "ci.t.3")]),
        ({"fail-fast": "${{ github.event_name != 'push' }}"}, False, []),
    ],
)
def test_fail_fast_cancels_the_other_legs(strategy: dict[str, Any], continue_on_error: Any, expected: Any) -> None:
    s = Scheduler()
    s.plan("r1", *matrix("r1", "t", 3, strategy=strategy, continue_on_error=continue_on_error))
    s.start("r1", "ci.t.1")
    s.start("r1", "ci.t.2")
    assert kinds(s.end("r1", "ci.t.1", Conclusion.FAILURE)) == expected


def test_the_strategy_context_holds_the_settings_evaluated() -> None:
    s = Scheduler()
    strategy = {"fail-fast": "${{ github.event_name != 'push' }}", "max-parallel": "${{ fromJSON('2') }}"}
    decided = s.plan("r1", *matrix("r1", "t", 3, strategy=strategy))
    assert [e.strategy for e in decided if isinstance(e, JobQueued)] == [
        {"fail-fast": False, "job-index": index, "job-total": 3, "max-parallel": 2} for index in (0, 1)
    ]


def test_fail_fast_run_fails_and_cancelled_legs_conclude_when_their_runner_stops() -> None:
    s = Scheduler()
    s.plan("r1", *matrix("r1", "t", 2), job("r1", "after", ("ci.t.1", "ci.t.2"), condition=None))
    s.start("r1", "ci.t.2")
    s.end("r1", "ci.t.1", Conclusion.FAILURE)
    decided = s.end("r1", "ci.t.2", Conclusion.CANCELLED)
    assert kinds(decided) == [("JobSkipped", "ci.after"), ("RunCompleted", "failure")]


@pytest.mark.parametrize(
    ("continue_on_error", "run_conclusion", "dependant"),
    [(False, Conclusion.FAILURE, "JobSkipped"), (True, Conclusion.SUCCESS, "JobQueued")],
)
def test_job_continue_on_error_keeps_the_run_and_dependants_going(
    continue_on_error: bool, run_conclusion: Conclusion, dependant: str
) -> None:
    s = Scheduler()
    s.plan("r1", job("r1", "a", continue_on_error=continue_on_error), job("r1", "b", ("ci.a",)))
    decided = s.end("r1", "ci.a", Conclusion.FAILURE)
    assert kinds(decided)[0] == (dependant, "ci.b")
    s.end("r1", "ci.b")
    assert completed(s.decided) == run_conclusion


def test_a_matrix_jobs_outputs_are_those_of_the_leg_that_completed_last() -> None:
    s = Scheduler()
    legs = matrix("r1", "t", 3, strategy={"fail-fast": False})
    s.plan("r1", *legs, job("r1", "after", tuple(leg.job_id for leg in legs)))
    for minute, leg in ((1, 3), (2, 1), (3, 2)):
        s.at(minute)
        decided = s.feed(JobCompleted(run_id="r1", job_id=f"ci.t.{leg}", conclusion=Conclusion.SUCCESS,
                                      outputs={"v": f"leg-{leg}"}))
    [after] = [e for e in decided if isinstance(e, JobQueued)]
    assert after.needs["t"].outputs == {"v": "leg-2"}


def test_a_matrix_legs_empty_output_does_not_hide_another_legs() -> None:
    # GitHub's example: each leg sets only its own output; the dependant sees them all
    s = Scheduler()
    legs = matrix("r1", "t", 3, strategy={"fail-fast": False})
    s.plan("r1", *legs, job("r1", "after", tuple(leg.job_id for leg in legs)))
    for minute, leg in ((1, 2), (2, 3), (3, 1)):
        s.at(minute)
        outputs = {f"output_{n}": str(n) if n == leg else "" for n in (1, 2, 3)}
        decided = s.feed(JobCompleted(run_id="r1", job_id=f"ci.t.{leg}", conclusion=Conclusion.SUCCESS,
                                      outputs=outputs))
    [after] = [e for e in decided if isinstance(e, JobQueued)]
    assert after.needs["t"].outputs == {"output_1": "1", "output_2": "2", "output_3": "3"}


# max-parallel ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("limit", "first"), [(1, 1), (2, 2), (5, 4), ("${{ 1 + 1 }}", 4)])
def test_max_parallel_limits_legs_in_progress(limit: Any, first: int) -> None:
    s = Scheduler()
    decided = s.plan("r1", *matrix("r1", "t", 4, strategy={"max-parallel": limit, "fail-fast": False}))
    queued = [e for e in decided if type(e).__name__ == "JobQueued"]
    assert len(queued) == first if isinstance(limit, int) else len(queued) == 4
    next_up = s.end("r1", queued[0].job_id if hasattr(queued[0], "job_id") else "", Conclusion.FAILURE)
    if first < 4:
        assert kinds(next_up) == [("JobQueued", f"ci.t.{first + 1}")]


# concurrency groups ----------------------------------------------------------------------------------------


def test_a_group_holds_one_runs_one_pending_and_a_newer_pending_replaces_the_older() -> None:
    s = Scheduler()
    group = {"group": "deploy-${{ github.ref }}"}
    assert kinds(s.plan("r1", job("r1", "a"), concurrency=group))[-1] == ("JobQueued", "ci.a")
    assert [type(e).__name__ for e in s.plan("r2", job("r2", "a"), concurrency=group)] == ["ConcurrencyWaited"]
    decided = s.plan("r3", job("r3", "a"), concurrency=group)
    assert [(type(e).__name__, e.run_id, getattr(e, "reason", "")) for e in decided] == [
        ("ConcurrencyCancelled", "r2", "superseded"),
        ("ConcurrencyWaited", "r3", ""),
        ("JobSkipped", "r2", "the workflow gave way in its concurrency group"),
        ("RunCompleted", "r2", ""),
    ]
    assert completed(decided) == Conclusion.CANCELLED
    decided = s.end("r1", "ci.a")
    assert [(type(e).__name__, e.run_id) for e in decided] == [
        ("ConcurrencyAcquired", "r3"),
        ("JobQueued", "r3"),
        ("RunCompleted", "r1"),
    ]


def test_a_group_that_evaluates_to_nothing_fails_the_workflow_or_the_job() -> None:
    # `${{ github.head_ref }}` is empty on a push: GitHub fails such a workflow rather than run it ungrouped
    s = Scheduler()
    decided = s.plan("r1", job("r1", "a"), job("r1", "b", ("ci.a",)), concurrency="${{ github.head_ref }}")
    assert [(type(e).__name__, getattr(e, "job_id", "")) for e in decided] == [
        ("JobCompleted", "ci.a"), ("JobCompleted", "ci.b"), ("RunCompleted", "")
    ]
    assert completed(decided) == Conclusion.FAILURE
    decided = s.plan("r2", job("r2", "a", concurrency={"group": "${{ github.head_ref }}"}), job("r2", "b"))
    assert [(type(e).__name__, getattr(e, "job_id", "")) for e in decided][:2] == [
        ("JobCompleted", "ci.a"), ("JobQueued", "ci.b")  # the job fails; the others go on
    ]


def test_a_group_is_its_repositorys_own() -> None:
    s = Scheduler()
    s.plan("r1", job("r1", "a"), concurrency="deploy")
    elsewhere = RunRequested(run_id="r2", repository="/srv/other", repository_name="o/other", ref="refs/heads/main",
                             sha="a" * 40)
    planned = RunPlanned(run_id="r2", workflow="ci.yml", workflow_name="CI", index=1, count=1, jobs=["ci.a"],
                         concurrency="deploy")

    decided = s.feed(elsewhere, job("r2", "a"), planned)

    assert [type(e).__name__ for e in decided] == ["RunNumbered", "ConcurrencyAcquired", "JobQueued"]
    assert [type(e).__name__ for e in s.plan("r3", job("r3", "a"), concurrency="deploy")] == ["ConcurrencyWaited"]


def test_a_job_asking_for_the_group_its_workflow_holds_is_cancelled_not_left_waiting() -> None:
    s = Scheduler()
    decided = s.plan("r1", job("r1", "a", concurrency="Same"), job("r1", "b", ("ci.a",)), concurrency="same")

    assert [(type(e).__name__, getattr(e, "reason", "")) for e in decided][:2] == [
        ("ConcurrencyAcquired", ""),
        ("ConcurrencyCancelled", "deadlock"),
    ]
    [ended] = [e for e in decided if isinstance(e, JobCompleted)]
    assert (ended.job_id, ended.conclusion, ended.error) == (
        "ci.a", Conclusion.CANCELLED, "cancelled: deadlock in concurrency group 'same'"
    )
    assert completed(decided) == Conclusion.CANCELLED
    assert [type(e).__name__ for e in s.plan("r2", job("r2", "a"), concurrency="same")] == [
        "ConcurrencyAcquired", "JobQueued"  # the group was given back
    ]


def test_queue_max_keeps_every_pending_entry_in_order() -> None:
    s = Scheduler()
    group = {"group": "deploy", "queue": "max"}
    s.plan("r1", job("r1", "a"), concurrency=group)
    assert [type(e).__name__ for e in s.plan("r2", job("r2", "a"), concurrency=group)] == ["ConcurrencyWaited"]
    assert [type(e).__name__ for e in s.plan("r3", job("r3", "a"), concurrency=group)] == ["ConcurrencyWaited"]
    decided = s.end("r1", "ci.a")
    assert [(type(e).__name__, e.run_id) for e in decided] == [
        ("ConcurrencyAcquired", "r2"),
        ("JobQueued", "r2"),
        ("RunCompleted", "r1"),
    ]
    decided = s.end("r2", "ci.a")
    assert [(type(e).__name__, e.run_id) for e in decided][:2] == [("ConcurrencyAcquired", "r3"), ("JobQueued", "r3")]


def test_an_entry_arriving_at_a_full_queue_is_cancelled() -> None:
    s = Scheduler()
    group = {"group": "deploy", "queue": "max"}
    s.plan("r0", job("r0", "a"), concurrency=group)
    for number in range(1, MAX_PENDING + 1):
        s.plan(f"r{number}", job(f"r{number}", "a"), concurrency=group)
    late = f"r{MAX_PENDING + 1}"
    decided = s.plan(late, job(late, "a"), concurrency=group)
    assert [(type(e).__name__, e.run_id, getattr(e, "reason", "")) for e in decided][:2] == [
        ("ConcurrencyWaited", late, ""),
        ("ConcurrencyCancelled", late, "queue-full"),
    ]
    assert completed(decided) == Conclusion.CANCELLED


def test_cancel_in_progress_cancels_the_holder() -> None:
    s = Scheduler()
    group = {"group": "Deploy", "cancel-in-progress": True}
    s.plan("r1", job("r1", "a"), concurrency=group)
    s.start("r1", "ci.a")
    decided = s.plan("r2", job("r2", "a"), concurrency={"group": "deploy", "cancel-in-progress": True})
    assert [type(e).__name__ for e in decided] == ["ConcurrencyCancelled", "ConcurrencyWaited", "JobCancelRequested"]
    decided = s.end("r1", "ci.a", Conclusion.CANCELLED)
    assert kinds(decided) == [("ConcurrencyAcquired", ""), ("JobQueued", "ci.a"), ("RunCompleted", "cancelled")]


def test_job_level_groups_use_matrix_and_max_in_progress_queues_fifo() -> None:
    s = Scheduler()
    rule = {"group": "gpu", "max-in-progress": 2}
    decided = s.plan("r1", *matrix("r1", "t", 4, concurrency=rule, strategy={"fail-fast": False}))
    assert [e.job_id for e in decided if type(e).__name__ == "JobQueued"] == ["ci.t.1", "ci.t.2"]  # type: ignore[attr-defined]
    assert [type(e).__name__ for e in decided].count("ConcurrencyCancelled") == 0
    decided = s.end("r1", "ci.t.2")
    assert kinds(decided) == [("ConcurrencyAcquired", "ci.t.3"), ("JobQueued", "ci.t.3")]


def test_job_group_from_matrix_separates_legs() -> None:
    s = Scheduler()
    decided = s.plan("r1", *matrix("r1", "t", 2, concurrency="leg-${{ matrix.n }}"))
    assert [e.job_id for e in decided if type(e).__name__ == "JobQueued"] == ["ci.t.1", "ci.t.2"]  # type: ignore[attr-defined]


# timeouts --------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("timeout", "quiet_at", "fires_at"), [(None, 359, 360), (5, 4, 5), ("${{ fromJSON('10') }}", 9, 10)]
)
def test_job_timeout_minutes(timeout: Any, quiet_at: float, fires_at: float) -> None:
    s = Scheduler()
    s.plan("r1", job("r1", "a", timeout_minutes=timeout))
    s.start("r1", "ci.a")
    assert s.at(quiet_at) == []
    assert kinds(s.at(fires_at)) == [("JobTimedOut", "ci.a")]  # the runner stops it and runs its cleanup
    assert s.at(fires_at + 1) == []
    assert kinds(s.end("r1", "ci.a", Conclusion.FAILURE)) == [("RunCompleted", "failure")]
    assert s.job("r1", "ci.a").failure == "timeout"


def test_a_runner_that_does_not_report_after_the_timeout_has_its_job_concluded_for_it() -> None:
    s = Scheduler()
    s.plan("r1", job("r1", "a", timeout_minutes=5))
    s.start("r1", "ci.a")
    assert kinds(s.at(5)) == [("JobTimedOut", "ci.a")]
    assert s.at(9.9) == []
    decided = s.at(10)
    assert kinds(decided) == [("JobCompleted", "ci.a"), ("RunCompleted", "failure")]
    assert "did not report the job within 0:05:00 of its timeout" in decided[0].error  # type: ignore[attr-defined]


def test_a_queued_job_no_runner_starts_times_out_after_a_day_and_the_run_after_35_days() -> None:
    s = Scheduler()
    s.plan("r1", job("r1", "a"))
    assert kinds(s.at(24 * 60)) == [("JobTimedOut", "ci.a"), ("RunCompleted", "failure")]
    s = Scheduler(Policy(queue_timeout=timedelta(days=100)))
    s.plan("r1", job("r1", "a"))
    assert kinds(s.at(35 * 24 * 60)) == [("RunTimedOut", ""), ("JobCompleted", "ci.a"), ("RunCompleted", "cancelled")]


# cancellation ----------------------------------------------------------------------------------------------


def test_cancelling_a_run_stops_running_jobs_cancels_queued_ones_and_lets_always_jobs_run() -> None:
    s = Scheduler()
    s.plan("r1", job("r1", "a"), job("r1", "b"), job("r1", "c", ("ci.a",)), job("r1", "d", ("ci.a",), condition=None))
    s.feed(JobPlanned(run_id="r1", job_id="ci.e", workflow="ci.yml", job_key="e", name="e", needs=["ci.a"],
                      condition="always()", runs_on=["linux"]))
    s.start("r1", "ci.a")
    assert kinds(s.feed(RunCancelRequested(run_id="r1"))) == [
        ("JobCancelRequested", "ci.a"),
        ("JobCompleted", "ci.b"),
    ]
    decided = s.end("r1", "ci.a", Conclusion.CANCELLED)
    assert kinds(decided) == [("JobSkipped", "ci.c"), ("JobSkipped", "ci.d"), ("JobQueued", "ci.e")]
    assert kinds(s.end("r1", "ci.b")) == []  # already cancelled
    assert kinds(s.end("r1", "ci.e")) == [("RunCompleted", "cancelled")]


# retries and leases ----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("retry", "failure", "requeued"),
    [
        (None, "lost", False),
        (3, "lost", True),
        (3, "step", False),
        ({"max-attempts": 2, "on": "any"}, "step", True),
        ({"max-attempts": 1, "on": "any"}, "step", False),
    ],
)
def test_retry_policy(retry: Any, failure: str, requeued: bool) -> None:
    s = Scheduler()
    s.plan("r1", job("r1", "a", retry=retry))
    s.start("r1", "ci.a")
    if failure == "lost":
        decided = s.feed(JobLost(run_id="r1", job_id="ci.a", reason="container did not start"))
    else:
        decided = s.end("r1", "ci.a", Conclusion.FAILURE)
    assert (decided[:1] == [e for e in decided if type(e).__name__ == "JobQueued"][:1] != []) is requeued
    if requeued:
        assert decided[0].attempt == 2  # type: ignore[attr-defined]
        assert kinds(s.end("r1", "ci.a", Conclusion.SUCCESS, attempt=1)) == []  # a stale attempt changes nothing
        assert kinds(s.end("r1", "ci.a", Conclusion.SUCCESS, attempt=2)) == [("RunCompleted", "success")]
    else:
        assert completed(decided) == Conclusion.FAILURE


def test_an_attempt_is_leased_once_and_an_expired_lease_is_lost() -> None:
    s = Scheduler(Policy(lease_period=timedelta(minutes=2)))
    s.plan("r1", job("r1", "a", retry=2))
    assert assign(s.state, "runner-x", ["Linux", "x64"], "lease-1") is not None
    assert assign(s.state, "runner-y", ["windows"], "lease-2") is None
    s.feed(JobAssigned(run_id="r1", job_id="ci.a", runner_id="runner-x", lease_id="lease-1"))
    assert assign(s.state, "runner-y", ["linux"], "lease-2") is None
    s.feed(JobAssigned(run_id="r1", job_id="ci.a", runner_id="runner-y", lease_id="lease-2"))
    assert s.job("r1", "ci.a").runner_id == "runner-x"
    s.at(1.5)
    s.feed(LeaseRenewed(run_id="r1", job_id="ci.a", lease_id="lease-1"))
    assert s.at(3) == []
    decided = s.at(3.6)
    assert kinds(decided) == [("JobLost", "ci.a"), ("JobQueued", "ci.a")]
    assert decided[1].attempt == 2  # type: ignore[attr-defined]


# re-runs ---------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("mode", "waves"), [("failed", [["ci.b.2"]]), ("all", [["ci.a"], ["ci.b.1", "ci.b.2"]])]
)
def test_rerun_as_a_new_attempt(mode: Literal["failed", "all"], waves: list[list[str]]) -> None:
    s = Scheduler()
    s.plan("r1", job("r1", "a"), *[job("r1", "b", ("ci.a",), leg=n, strategy={"fail-fast": False}) for n in (1, 2)],
           job("r1", "c", ("ci.b.1", "ci.b.2")))
    s.end("r1", "ci.a")
    s.end("r1", "ci.b.1")
    s.end("r1", "ci.b.2", Conclusion.FAILURE)
    assert completed(s.decided) == Conclusion.FAILURE
    decided = s.feed(RunRerunRequested(run_id="r1", mode=mode))
    for wave in waves:
        assert [(e.job_id, e.attempt) for e in decided] == [(j, 2) for j in wave]  # type: ignore[attr-defined]
        for job_id in wave:
            decided = s.end("r1", job_id, attempt=2)
    assert kinds(decided) == [("JobQueued", "ci.c")]
    assert decided[0].needs["b"].result == Conclusion.SUCCESS  # type: ignore[attr-defined]
    # c was skipped before, so this is its first attempt
    assert kinds(s.end("r1", "ci.c", attempt=decided[0].attempt)) == [("RunCompleted", "success")]  # type: ignore[attr-defined]


# environments ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("answer", "expected"),
    [
        (ApprovalGranted(run_id="r1", job_id="ci.deploy", approver="mallory"), []),
        (ApprovalGranted(run_id="r1", job_id="ci.deploy", approver="Alice"), [("WaitTimerStarted", "ci.deploy")]),
        (ApprovalRejected(run_id="r1", job_id="ci.deploy", approver="bob"), [("RunCompleted", "failure")]),
    ],
)
def test_required_reviewers_then_the_wait_timer(answer: Event, expected: list[tuple[str, str]]) -> None:
    rules = {"production": Environment(reviewers=("alice", "bob"), wait_timer_minutes=10)}
    s = Scheduler(Policy(environments=rules))
    decided = s.plan("r1", job("r1", "deploy", environment={"name": "Production", "url": "https://x"}))
    assert kinds(decided) == [("ApprovalRequested", "ci.deploy")]
    assert kinds(s.feed(answer)) == expected
    if expected and expected[0][0] == "WaitTimerStarted":
        assert s.at(9) == []
        assert kinds(s.at(10)) == [("JobQueued", "ci.deploy")]


def test_an_unanswered_approval_fails_after_30_days() -> None:
    s = Scheduler(Policy(environments={"prod": Environment(required_approval=True)}))
    s.plan("r1", job("r1", "deploy", environment="prod"))
    assert kinds(s.at(30 * 24 * 60)) == [("JobTimedOut", "ci.deploy"), ("RunCompleted", "failure")]
