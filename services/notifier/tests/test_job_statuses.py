"""Which status each job event sets, on which commit and under which name: pure decisions, no I/O."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest
from conveyor_events import (
    Conclusion,
    Event,
    JobCompleted,
    JobPlanned,
    JobQueued,
    JobSkipped,
    JobStarted,
    JobTimedOut,
    RunPlanned,
    RunRequested,
    StepStarted,
)
from conveyor_notifier.domain import JobStatus, RunTarget, context_name, github_repository, job_status, run_target

RUN = "run-1"
SHA = "a" * 40
WORKFLOW = ".github/workflows/ci.yml"


def requested(payload: dict[str, Any], workdir: str | None = None) -> RunRequested:
    return RunRequested(run_id=RUN, repository="/srv/hello", ref="refs/heads/main", sha=SHA, payload=payload,
                        workdir=workdir)


@pytest.mark.parametrize(
    ("event", "expected"),
    [
        (JobQueued(run_id=RUN, job_id="j"), JobStatus("pending", "Queued")),
        (JobStarted(run_id=RUN, job_id="j", runner_id="local"), JobStatus("pending", "In progress")),
        (JobCompleted(run_id=RUN, job_id="j", conclusion=Conclusion.SUCCESS), JobStatus("success", "Succeeded")),
        (JobCompleted(run_id=RUN, job_id="j", conclusion=Conclusion.FAILURE), JobStatus("failure", "Failed")),
        (
            JobCompleted(run_id=RUN, job_id="j", conclusion=Conclusion.FAILURE, error="exceeded 5 minutes"),
            JobStatus("failure", "exceeded 5 minutes"),
        ),
        (JobCompleted(run_id=RUN, job_id="j", conclusion=Conclusion.CANCELLED), JobStatus("error", "Cancelled")),
        (JobCompleted(run_id=RUN, job_id="j", conclusion=Conclusion.SKIPPED), JobStatus("success", "Skipped")),
        (JobSkipped(run_id=RUN, job_id="j", reason="if: false"), JobStatus("success", "Skipped")),
        (
            JobTimedOut(run_id=RUN, job_id="j", deadline=datetime(2024, 5, 1, tzinfo=UTC), limit_minutes=360),
            JobStatus("failure", "Timed out after 360 minutes"),
        ),
        (
            JobTimedOut(
                run_id=RUN, job_id="j", phase="queued", deadline=datetime(2024, 5, 1, tzinfo=UTC), limit_minutes=1440
            ),
            JobStatus("failure", "No runner took it within 1440 minutes"),
        ),
        (StepStarted(run_id=RUN, job_id="j", step_index=0, name="s"), None),
    ],
)
def test_each_job_event_sets_its_status(event: Event, expected: JobStatus | None) -> None:
    assert job_status(event) == expected


def test_a_description_is_one_line_of_at_most_140_characters() -> None:
    error = "line one\n" + "x" * 300
    status = job_status(JobCompleted(run_id=RUN, job_id="j", conclusion=Conclusion.FAILURE, error=error))

    assert status is not None
    assert len(status.description) == 140
    assert status.description.startswith("line one xxx")
    assert status.description.endswith("…")


@pytest.mark.parametrize(
    ("request_", "expected"),
    [
        (requested({"repository": {"full_name": "octo/hello"}}), "octo/hello"),
        (requested({"repository": {"full_name": "octo/hello"}}, workdir="/home/me/hello"), None),
        (requested({}), None),
        (requested({"repository": "octo/hello"}), None),
        (requested({"repository": {"name": "hello"}}), None),
        (requested({"repository": {"full_name": "octo/"}}), None),
    ],
)
def test_only_runs_of_a_github_commit_report_to_github(request_: RunRequested, expected: str | None) -> None:
    assert github_repository(request_) == expected


def test_contexts_are_named_by_workflow_and_job() -> None:
    history: list[Event] = [
        requested({"repository": {"full_name": "octo/hello"}}),
        RunPlanned(run_id=RUN, workflow=WORKFLOW, workflow_name="CI", index=0, count=1, jobs=["build"]),
        JobPlanned(run_id=RUN, job_id="ci.build.1", workflow=WORKFLOW, job_key="build", name="build (3.11)"),
    ]
    target = run_target(history)

    assert target == RunTarget("octo/hello", SHA, {WORKFLOW: "CI"}, {"ci.build.1": (WORKFLOW, "build (3.11)")})
    assert context_name(target, "ci.build.1") == "Conveyor / CI / build (3.11)"
    assert context_name(target, "ci.unknown") == "Conveyor / workflow / ci.unknown"


def test_a_run_of_a_working_tree_has_no_target() -> None:
    assert run_target([requested({"repository": {"full_name": "octo/hello"}}, workdir="/w")]) is None
