"""Feeding events to the scheduler's core the way its handler does, for tests: each event folded into the state,
then what it decides, decided and folded in in turn."""

from __future__ import annotations

from functools import reduce

from conveyor_events import Conclusion, Event, JobCompleted, RunEvent
from conveyor_scheduler.domain import SchedulerState, decide, evolve


class Feed:
    """A scheduler state fed event by event; keeps every event it saw and made (`log`) and its decisions
    (`decided`)."""

    def __init__(self, run_id: str = "run-1") -> None:
        self.run_id = run_id
        self.state = SchedulerState()
        self.log: list[Event] = []
        self.decided: list[RunEvent] = []

    def feed(self, *events: Event) -> list[RunEvent]:
        """Fold in each event and what it decides; the decisions of them all."""
        produced: list[RunEvent] = []
        for event in events:
            self.state = evolve(self.state, event)
            decisions = decide(self.state, event)
            self.state = reduce(evolve, decisions, self.state)
            self.log.extend([event, *decisions])
            produced.extend(decisions)
        self.decided.extend(produced)
        return produced

    def complete(self, job_id: str, conclusion: Conclusion = Conclusion.SUCCESS, **outputs: str) -> list[RunEvent]:
        """The job's runner reports it completed (its first attempt), with these outputs."""
        return self.completed(job_id, outputs, conclusion)

    def completed(
        self, job_id: str, outputs: dict[str, str], conclusion: Conclusion = Conclusion.SUCCESS
    ) -> list[RunEvent]:
        return self.feed(JobCompleted(run_id=self.run_id, job_id=job_id, conclusion=conclusion, outputs=outputs))
