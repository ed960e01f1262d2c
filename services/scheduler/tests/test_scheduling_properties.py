"""Random job graphs, matrices and concurrency groups under random runner behaviour: the core's promises hold."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from functools import reduce
from typing import Any

from conveyor_events import (
    CallFrame,
    Conclusion,
    Event,
    JobAssigned,
    JobCompleted,
    JobPlanned,
    JobQueued,
    JobStarted,
    RunCancelRequested,
    RunEvent,
    RunPlanned,
    RunRequested,
)
from conveyor_scheduler.domain import EPOCH, Policy, SchedulerState, Tick, assign, decide, evolve
from conveyor_scheduler.domain.concurrency import groups
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule

T0 = datetime(2026, 1, 1, tzinfo=UTC)
GROUPS: dict[str, Any] = {"one": "one", "two": {"group": "two", "max-in-progress": 2}}
SLOTS = {"one": 1, "two": 2}
CONCLUSIONS = st.sampled_from([Conclusion.SUCCESS, Conclusion.SUCCESS, Conclusion.FAILURE, Conclusion.CANCELLED])


@st.composite
def graphs(draw: st.DrawFn, run_id: str) -> list[Event]:
    """A workflow of 1-5 jobs: random needs on earlier jobs, matrices, strategies, groups and retries."""
    events: list[Event] = [RunRequested(run_id=run_id, repository="o/r", ref="refs/heads/main", sha="a" * 40)]
    ids: dict[str, list[str]] = {}
    for index in range(draw(st.integers(1, 5))):
        key = f"j{index}"
        needs = draw(st.lists(st.sampled_from(sorted(ids)), unique=True)) if ids else []
        legs = draw(st.integers(0, 3))
        spec: dict[str, Any] = {
            "strategy": {"fail-fast": draw(st.booleans()), "max-parallel": draw(st.sampled_from([None, 1, 2]))},
            "concurrency": GROUPS.get(draw(st.sampled_from(["", "one", "two"]))),
            "retry": draw(st.sampled_from([None, 2, {"max-attempts": 2, "on": "any"}])),
            "continue_on_error": draw(st.booleans()),
        }
        ids[key] = [f"ci.{key}.{leg}" for leg in range(1, legs + 1)] or [f"ci.{key}"]
        for leg, job_id in enumerate(ids[key], start=1):
            events.append(JobPlanned(
                run_id=run_id, job_id=job_id, workflow="ci.yml", job_key=key, name=job_id,
                needs=[need_id for need in needs for need_id in ids[need]], runs_on=["linux"], spec=spec,
                matrix={"leg": leg} if legs else None,
                condition=draw(st.sampled_from([None, None, "always()", "failure()"])),
            ))
    if draw(st.booleans()):  # a call of a reusable workflow of two jobs, perhaps holding a group together
        concurrency = draw(st.sampled_from([None, "one", "call", {"group": "call", "cancel-in-progress": True}]))
        needed = draw(st.lists(st.sampled_from(sorted(ids)), unique=True))
        frame = CallFrame(job_id="ci.c", job_key="c", workflow="called.yml", name="c", concurrency=concurrency,
                          needs=[need_id for need in needed for need_id in ids[need]],
                          workflow_concurrency=draw(st.sampled_from([None, "call", "one", "wf"])))
        plain = {"strategy": {"fail-fast": True, "max-parallel": None}}
        ids["c/a"], ids["c/b"] = ["ci.c/a"], ["ci.c/b"]
        for key, within in (("a", frame.needs), ("b", ["ci.c/a"])):
            events.append(JobPlanned(run_id=run_id, job_id=f"ci.c/{key}", workflow="ci.yml", job_key=f"c/{key}",
                                     name=key, needs=list(within), runs_on=["linux"], spec=plain, call=[frame]))
    workflow_group = draw(st.sampled_from([None, "wf", {"group": "wf", "cancel-in-progress": True}]))
    extra = {"concurrency": workflow_group} if workflow_group else {}
    jobs = [job_id for key in ids for job_id in ids[key]]
    events.append(RunPlanned(run_id=run_id, workflow="ci.yml", workflow_name="CI", index=1, count=1, jobs=jobs,
                             **extra))
    return events


class Scheduling(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.state = SchedulerState(policy=Policy(lease_period=timedelta(minutes=2)), now=EPOCH)
        self.history: list[Event | Tick] = []
        self.external: list[Event | Tick] = []
        self.runs = 0
        self.now = T0
        self.assigned: set[tuple[str, str, int]] = set()

    def feed(self, event: Event | Tick) -> list[RunEvent]:
        self.state = evolve(self.state, event)
        self.history.append(event)
        decisions = decide(self.state, event)
        for decision in decisions:
            if isinstance(decision, JobQueued):
                self.check_needs_done(decision)
            self.state = evolve(self.state, decision)
        self.history.extend(decisions)
        return decisions

    def check_needs_done(self, queued: JobQueued) -> None:
        run = self.state.runs[queued.run_id]
        for need in run.jobs[queued.job_id].plan.needs:
            assert run.jobs[need].status == "completed", f"{queued.job_id} queued before {need} completed"

    def jobs(self, *statuses: str) -> list[tuple[str, str, int]]:
        return [
            (run.run_id, job.plan.job_id, job.attempt)
            for run in self.state.runs.values()
            if run.conclusion is None
            for job in run.jobs.values()
            if job.status in statuses
        ]

    def runner(self, run_id: str, job_id: str) -> str:
        return self.state.runs[run_id].jobs[job_id].runner_id or "r1"

    def external_event(self, event: Event | Tick) -> None:
        self.external.append(event)
        self.feed(event)

    @precondition(lambda self: self.runs < 4)
    @rule(data=st.data())
    def new_run(self, data: st.DataObject) -> None:
        self.runs += 1
        for event in data.draw(graphs(f"run-{self.runs}")):
            self.external_event(event)

    @rule(data=st.data(), runner=st.sampled_from(["r1", "r2"]))
    def runner_leases(self, data: st.DataObject, runner: str) -> None:
        offered = assign(self.state, runner, ["linux"], f"lease-{len(self.history)}")
        if offered is None:
            return
        key = (offered.run_id, offered.job_id, offered.attempt)
        assert key not in self.assigned, f"{key} assigned twice"
        self.assigned.add(key)
        self.external_event(offered)
        if data.draw(st.booleans()):  # a second runner racing for the same attempt changes nothing
            before = self.state
            self.feed(JobAssigned(run_id=offered.run_id, job_id=offered.job_id, attempt=offered.attempt,
                                  runner_id="intruder", lease_id="other"))
            assert self.state.runs[offered.run_id].jobs[offered.job_id] == before.runs[offered.run_id].jobs[
                offered.job_id]

    @rule(data=st.data())
    def runner_starts(self, data: st.DataObject) -> None:
        queued = self.jobs("queued")
        if queued:
            run_id, job_id, attempt = data.draw(st.sampled_from(queued))
            runner = self.runner(run_id, job_id)
            self.external_event(JobStarted(run_id=run_id, job_id=job_id, attempt=attempt, runner_id=runner))

    @rule(data=st.data(), conclusion=CONCLUSIONS)
    def runner_completes(self, data: st.DataObject, conclusion: Conclusion) -> None:
        running = self.jobs("running")
        if running:
            run_id, job_id, attempt = data.draw(st.sampled_from(running))
            self.external_event(JobCompleted(run_id=run_id, job_id=job_id, attempt=attempt, conclusion=conclusion))

    @rule(minutes=st.sampled_from([1, 3, 30]))
    def clock_moves(self, minutes: int) -> None:
        self.now += timedelta(minutes=minutes)
        self.external_event(Tick(self.now))

    @rule(data=st.data())
    def redelivery_changes_nothing(self, data: st.DataObject) -> None:
        if not self.external:
            return
        event = data.draw(st.sampled_from(self.external))
        before = self.state
        assert self.feed(event) == []
        assert self.state == before

    @rule(data=st.data())
    def someone_cancels(self, data: st.DataObject) -> None:
        live = [run_id for run_id, run in self.state.runs.items() if run.conclusion is None]
        if live and data.draw(st.integers(0, 3)) == 0:
            self.external_event(RunCancelRequested(run_id=data.draw(st.sampled_from(live))))

    @invariant()
    def limits_hold(self) -> None:
        for (_, name), group in groups(self.state).items():
            assert len(group.holders) <= SLOTS.get(name, 1), f"group {name}: {group.holders}"
            if name in ("one", "wf", "call"):
                assert len(group.waiters) <= 1
        for run in self.state.runs.values():
            by_key: dict[tuple[str, ...], list[Any]] = {}
            for job in run.jobs.values():
                by_key.setdefault(job.key, []).append(job)
            for legs in by_key.values():
                limit = legs[0].plan.spec["strategy"]["max-parallel"]
                busy = [leg for leg in legs if leg.status in ("waiting", "approval", "timer", "queued", "running")]
                assert limit is None or len(busy) <= limit

    def stuck(self) -> str:
        return "; ".join(
            f"{run.run_id} {run.workflows} cancel={run.cancel_requested}: "
            + ", ".join(f"{j.plan.job_id}={j.status}/{j.group}/{j.holds}/{j.cancel_reason}" for j in run.jobs.values())
            for run in self.state.runs.values()
            if run.conclusion is None
        )

    def teardown(self) -> None:
        for _ in range(500):
            if all(run.conclusion is not None for run in self.state.runs.values()):
                break
            running, queued = self.jobs("running"), self.jobs("queued")
            if running:
                run_id, job_id, attempt = running[0]
                self.feed(JobCompleted(run_id=run_id, job_id=job_id, attempt=attempt, conclusion=Conclusion.SUCCESS))
            elif queued:
                run_id, job_id, attempt = queued[0]
                runner = self.runner(run_id, job_id)
                self.feed(JobStarted(run_id=run_id, job_id=job_id, attempt=attempt, runner_id=runner))
            else:
                self.now += timedelta(days=1)
                self.feed(Tick(self.now))
        assert all(run.conclusion is not None for run in self.state.runs.values()), self.stuck()
        replayed = reduce(evolve, self.history, SchedulerState(policy=self.state.policy, now=EPOCH))
        assert replayed == self.state


TestScheduling = Scheduling.TestCase
TestScheduling.settings = settings(
    max_examples=80, stateful_step_count=30, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)
