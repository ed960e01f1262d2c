"""One realistic instance of every event class the contract exports, shared by the events tests."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import conveyor_events
import pytest
from conveyor_events import (
    Annotation,
    ApiTokenIssued,
    ApiTokenRevoked,
    ApprovalGranted,
    ApprovalRejected,
    ApprovalRequested,
    ArtifactDeleted,
    ArtifactUploaded,
    Conclusion,
    ConcurrencyAcquired,
    ConcurrencyCancelled,
    ConcurrencyWaited,
    DeliveryRedelivered,
    Event,
    EventDeadLettered,
    JobAssigned,
    JobCancelRequested,
    JobCompleted,
    JobLost,
    JobPlanned,
    JobQueued,
    JobSkipped,
    JobStarted,
    JobTimedOut,
    LeaseRenewed,
    LogLine,
    MatrixExpanded,
    NeedResult,
    NotificationFailed,
    Problem,
    RepositoryRegistered,
    RunCancelRequested,
    RunCompleted,
    RunEvent,
    RunnerCredentialIssued,
    RunnerRegistered,
    RunnerSeen,
    RunNumbered,
    RunPlanned,
    RunRejected,
    RunRequested,
    RunRerunRequested,
    RunTimedOut,
    ScheduleFired,
    ScheduleFound,
    StepCompleted,
    StepLogged,
    StepStarted,
    UnknownEvent,
    WaitTimerStarted,
)

RUN = "run-1"
JOB = "job-build"
AT = datetime(2024, 5, 17, 8, 30, 15, 123456, tzinfo=UTC)

SAMPLES: dict[type[Event], Event] = {
    RunRequested: RunRequested(
        run_id=RUN,
        repository="acme/app",
        ref="refs/heads/main",
        sha="a" * 40,
        event_name="pull_request",
        payload={"number": 7, "nested": {"ok": True, "list": [1, 2.5, None]}},
        workdir="/src/app",
        workflows=[".github/workflows/ci.yml"],
        inputs={"level": "debug"},
        actor="octocat",
        delivery_id="d-1",
    ),
    RunPlanned: RunPlanned(
        run_id=RUN, workflow=".github/workflows/ci.yml", workflow_name="CI", index=0, count=1, jobs=["build"]
    ),
    RunRejected: RunRejected(
        run_id=RUN,
        workflow=".github/workflows/bad.yml",
        index=1,
        count=2,
        reason="invalid workflow",
        problems=[Problem(path=".github/workflows/bad.yml", line=3, column=5, message="unexpected key 'jbos'")],
    ),
    JobPlanned: JobPlanned(
        run_id=RUN,
        job_id=JOB,
        workflow=".github/workflows/ci.yml",
        job_key="build",
        name="Build (ubuntu)",
        needs=["lint"],
        condition="success()",
        runs_on=["ubuntu-latest"],
        spec={"steps": [{"run": "make"}]},
        workflow_env={"CI": "true"},
        workflow_defaults={"run": {"shell": "bash"}},
        matrix={"os": "ubuntu"},
    ),
    JobQueued: JobQueued(
        run_id=RUN,
        job_id=JOB,
        attempt=2,
        labels=["ubuntu-latest"],
        needs={"lint": NeedResult(result=Conclusion.SUCCESS, outputs={"version": "1.2"})},
        run_number=12,
    ),
    JobSkipped: JobSkipped(run_id=RUN, job_id=JOB, reason="if: false"),
    JobAssigned: JobAssigned(run_id=RUN, job_id=JOB, attempt=2, runner_id="runner-1", lease_id="lease-1"),
    JobStarted: JobStarted(run_id=RUN, job_id=JOB, attempt=2, runner_id="runner-1"),
    StepStarted: StepStarted(run_id=RUN, job_id=JOB, step_index=0, step_id="checkout", name="Checkout"),
    StepLogged: StepLogged(
        run_id=RUN,
        job_id=JOB,
        step_index=0,
        first_line=1,
        lines=[
            LogLine(at=AT, text="cloning…"),
            LogLine(at=AT.astimezone(timezone(timedelta(hours=2))), text="done ✓"),
        ],
    ),
    StepCompleted: StepCompleted(
        run_id=RUN,
        job_id=JOB,
        step_index=0,
        outcome=Conclusion.FAILURE,
        conclusion=Conclusion.SUCCESS,
        outputs={"ref": "main"},
        step_id="checkout",
        name="Checkout",
        annotations=[Annotation(level="warning", message="slow", file="a.py", line=3, column=1, title="Careful")],
        summary="# Done",
    ),
    ArtifactUploaded: ArtifactUploaded(
        run_id=RUN, job_id=JOB, attempt=2, artifact_id=7, name="dist", size=2048, digest="sha256:" + "e" * 64
    ),
    ArtifactDeleted: ArtifactDeleted(run_id=RUN, job_id=JOB, artifact_id=7, name="dist"),
    JobCompleted: JobCompleted(
        run_id=RUN, job_id=JOB, attempt=2, conclusion=Conclusion.FAILURE, outputs={"x": "1"}, error="exit 1"
    ),
    RunCompleted: RunCompleted(run_id=RUN, conclusion=Conclusion.CANCELLED),
    RunCancelRequested: RunCancelRequested(run_id=RUN, reason="superseded", requested_by="alice"),
    RepositoryRegistered: RepositoryRegistered(
        name="app", url="https://example.com/acme/app.git", default_branch="dev"
    ),
    EventDeadLettered: EventDeadLettered(
        consumer="planner", event_id="e-1", failed_type="RunRequested", position=12, reason="ValueError: boom"
    ),
    JobCancelRequested: JobCancelRequested(run_id=RUN, job_id=JOB, attempt=2, reason="fail-fast"),
    JobTimedOut: JobTimedOut(
        run_id=RUN, job_id=JOB, attempt=1, phase="running", deadline=AT + timedelta(minutes=30), limit_minutes=30
    ),
    JobLost: JobLost(run_id=RUN, job_id=JOB, attempt=1, runner_id="runner-7", lease_id="lease-1", reason="expired"),
    LeaseRenewed: LeaseRenewed(run_id=RUN, job_id=JOB, attempt=1, lease_id="lease-1"),
    RunTimedOut: RunTimedOut(run_id=RUN, deadline=AT + timedelta(days=35)),
    RunRerunRequested: RunRerunRequested(run_id=RUN, mode="all", requested_by="alice"),
    ConcurrencyWaited: ConcurrencyWaited(
        run_id=RUN, workflow="ci.yml", job_id=JOB, group="deploy-main", since=AT, slots=2
    ),
    ConcurrencyAcquired: ConcurrencyAcquired(run_id=RUN, workflow="ci.yml", group="deploy-main"),
    ConcurrencyCancelled: ConcurrencyCancelled(
        run_id=RUN, workflow="ci.yml", job_id=JOB, group="deploy-main", reason="superseded"
    ),
    ApprovalRequested: ApprovalRequested(
        run_id=RUN, job_id=JOB, attempt=1, environment="production", reviewers=["alice", "bob"]
    ),
    ApprovalGranted: ApprovalGranted(
        run_id=RUN, job_id=JOB, attempt=1, environment="production", approver="alice", comment="ship it"
    ),
    ApprovalRejected: ApprovalRejected(
        run_id=RUN, job_id=JOB, attempt=1, environment="production", approver="bob", comment="not today"
    ),
    WaitTimerStarted: WaitTimerStarted(
        run_id=RUN, job_id=JOB, attempt=1, environment="production", until=AT + timedelta(minutes=5)
    ),
    MatrixExpanded: MatrixExpanded(
        run_id=RUN,
        job_id="ci.build",
        matrix={"os": ["a", "b"], "include": [{"os": "c", "extra": "x"}]},
        legs=["ci.build.1", "ci.build.2", "ci.build.3"],
    ),
    RunNumbered: RunNumbered(run_id=RUN, workflow=".github/workflows/ci.yml", repository="acme/app", number=42),
    NotificationFailed: NotificationFailed(
        run_id=RUN, target="github-status", context="Conveyor / CI / build", reason="HTTP 500", attempts=4
    ),
    RunnerRegistered: RunnerRegistered(runner_id="runner-1", name="build-box", labels=["self-hosted", "linux"]),
    RunnerSeen: RunnerSeen(runner_id="runner-1"),
    ScheduleFound: ScheduleFound(
        repository="acme/app", workflow=".github/workflows/nightly.yml", cron="0 3 * * 1-5", at=AT
    ),
    ScheduleFired: ScheduleFired(
        repository="acme/app",
        workflow=".github/workflows/nightly.yml",
        cron="0 3 * * 1-5",
        tick=AT.replace(second=0, microsecond=0),
        run_id=RUN,
    ),
    ApiTokenIssued: ApiTokenIssued(
        token_id="token-1", name="deploy bot", token_hash="ab" * 32, grants={"acme/app": "write", "*": "read"}
    ),
    ApiTokenRevoked: ApiTokenRevoked(token_id="token-1"),
    RunnerCredentialIssued: RunnerCredentialIssued(runner_id="runner-1", credential_hash="cd" * 32),
    DeliveryRedelivered: DeliveryRedelivered(
        repository="acme/app",
        github="acme/app",
        hook_id=12,
        delivery_id=34,
        guid="0b989ba4-242f-11e5-81e1-c7b6966d2516",
        event_name="push",
    ),
}


def exported_event_classes() -> set[type[Event]]:
    """Every concrete event class `conveyor_events` exports (the abstract bases and UnknownEvent left out)."""
    found = set()
    for name in conveyor_events.__all__:
        value = getattr(conveyor_events, name)
        if isinstance(value, type) and issubclass(value, Event) and value not in (Event, RunEvent, UnknownEvent):
            found.add(value)
    return found


CLASSES: list[type[Event]] = sorted(SAMPLES, key=lambda cls: cls.__name__)


@pytest.fixture(params=CLASSES, ids=[cls.__name__ for cls in CLASSES])
def sample(request: pytest.FixtureRequest) -> Event:
    """A sample of each exported event class in turn."""
    event: Event = SAMPLES[request.param]
    return event


@pytest.fixture
def samples() -> dict[type[Event], Event]:
    return dict(SAMPLES)


@pytest.fixture
def exported() -> set[type[Event]]:
    return exported_event_classes()
