"""The scheduler: the run state machine, from planned jobs to the run's conclusion."""

from conveyor_runtime import EventLog

from conveyor_scheduler.handlers import CONSUMER, Scheduler


def create_scheduler(log: EventLog) -> Scheduler:
    """The scheduler service over `log`."""
    return Scheduler(log)


__all__ = ["CONSUMER", "Scheduler", "create_scheduler"]
