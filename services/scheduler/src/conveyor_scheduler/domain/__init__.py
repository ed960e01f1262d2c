"""The scheduler's decisions, pure: `evolve` folds an event into a run's state, `decide` says what follows."""

from conveyor_scheduler.domain.run import JobState, RunState, decide, evolve

__all__ = ["JobState", "RunState", "decide", "evolve"]
