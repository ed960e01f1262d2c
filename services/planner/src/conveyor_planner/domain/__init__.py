"""The planner's decisions, pure: which workflows a request triggers, the jobs they plan, and the `workflow_run`
runs that a run's workflows request."""

from conveyor_planner.domain.calls import RemoteWorkflowError, RemoteWorkflows
from conveyor_planner.domain.planning import job_id_for, plan_run
from conveyor_planner.domain.workflow_runs import (
    HISTORY_TYPES,
    MAX_CHAIN_DEPTH,
    ChainLimitReached,
    Decision,
    RunHistory,
    WorkflowRunRequest,
    chain_depth,
    wanted,
    workflow_run_triggers,
)

__all__ = [
    "HISTORY_TYPES",
    "MAX_CHAIN_DEPTH",
    "ChainLimitReached",
    "Decision",
    "RemoteWorkflowError",
    "RemoteWorkflows",
    "RunHistory",
    "WorkflowRunRequest",
    "chain_depth",
    "job_id_for",
    "plan_run",
    "wanted",
    "workflow_run_triggers",
]
