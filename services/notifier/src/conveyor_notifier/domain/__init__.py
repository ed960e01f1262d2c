"""What the notifier decides, without I/O: which status a job's event sets on which commit, under which name."""

from conveyor_notifier.domain.statuses import (
    DESCRIPTION_LIMIT,
    JobStatus,
    RunTarget,
    State,
    context_name,
    github_repository,
    job_status,
    run_target,
)

__all__ = [
    "DESCRIPTION_LIMIT",
    "JobStatus",
    "RunTarget",
    "State",
    "context_name",
    "github_repository",
    "job_status",
    "run_target",
]
