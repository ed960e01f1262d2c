"""The planner's decisions, pure: which workflows a request triggers and the jobs they plan."""

from conveyor_planner.domain.planning import job_id_for, plan_run

__all__ = ["job_id_for", "plan_run"]
