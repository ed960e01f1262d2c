"""The events of a run, in the order a run usually produces them."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from conveyor_events._base import Event, RunEvent


class Conclusion(StrEnum):
    """How a step, job or run ended, in GitHub's words."""

    SUCCESS = "success"
    FAILURE = "failure"
    CANCELLED = "cancelled"
    SKIPPED = "skipped"


class Problem(BaseModel):
    """One problem found in a workflow file: where it is and what is wrong."""

    model_config = ConfigDict(frozen=True)

    path: str
    line: int = 0
    column: int = 0
    message: str

    def __str__(self) -> str:
        if self.line:
            return f"{self.path} (Line: {self.line}, Col: {self.column}): {self.message}"
        return f"{self.path}: {self.message}"


class LogLine(BaseModel):
    """One line a step printed, with the time the runner read it."""

    model_config = ConfigDict(frozen=True)

    at: datetime
    text: str


class Annotation(BaseModel):
    """An error, warning or notice a step reported (`::error file=...::message`), shown with the run."""

    model_config = ConfigDict(frozen=True)

    level: str
    message: str
    file: str | None = None
    line: int | None = None
    column: int | None = None
    end_line: int | None = None
    end_column: int | None = None
    title: str | None = None


class NeedResult(BaseModel):
    """What a job that another job needs ended with: the `needs.<job>` context."""

    model_config = ConfigDict(frozen=True)

    result: Conclusion
    outputs: dict[str, str] = Field(default_factory=dict)


class RunRequested(RunEvent):
    """A trigger asked for the workflows of a repository at a commit to run."""

    repository: str
    ref: str
    sha: str
    event_name: str = "push"
    payload: dict[str, Any] = Field(default_factory=dict)
    workdir: str | None = None
    """When set, workflows and the checkout come from this working tree instead of the commit."""
    workflows: list[str] = Field(default_factory=list)
    """Only these workflow files (paths relative to the repository); all of them when empty."""
    inputs: dict[str, Any] = Field(default_factory=dict)
    actor: str = "conveyor"
    delivery_id: str | None = None
    variables: dict[str, str] = Field(default_factory=dict)
    """The `vars` context."""
    env: dict[str, str] = Field(default_factory=dict)
    """Environment for every step, below the workflow's own `env`."""
    jobs: list[str] = Field(default_factory=list)
    """Only these jobs (by key) and the jobs they need; every job when empty."""
    fork: bool = False
    """The code comes from a fork's pull request: its jobs get no secrets, as on GitHub."""
    repository_name: str | None = None
    """The repository as GitHub names it (`owner/name`), which `github.repository` reads, where `repository` is
    where to find it (a path or a clone URL); None when `repository` is that name already."""
    default_branch: str = ""
    """The repository's default branch as it was registered (or as a webhook's payload names it); '' when not
    known. Caches saved there are restored by runs of every branch."""

    @property
    def github_repository(self) -> str:
        """`github.repository`: the GitHub name when known, else the repository as given."""
        return self.repository_name or self.repository


class RunPlanned(RunEvent):
    """One workflow of the run was loaded and planned: `index` of `count` workflows triggered."""

    workflow: str
    workflow_name: str
    index: int
    count: int
    jobs: list[str]
    concurrency: Any = None
    """The workflow's `concurrency:` (a group name, or a mapping with `group` and `cancel-in-progress`)."""
    run_name: str | None = None
    """The workflow's `run-name:`, unevaluated: it may read `github.run_number`, known once the run is numbered."""


class RunRejected(RunEvent):
    """A workflow of the run (or, when `workflow` is None, the whole request) cannot run."""

    workflow: str | None = None
    index: int = 0
    count: int = 0
    reason: str
    problems: list[Problem] = Field(default_factory=list)
    nothing_triggered: bool = False
    """No workflow of the repository is triggered by the request (or it has none): GitHub starts no run at all,
    so the run is concluded `skipped`, not failed."""


class CallFrame(BaseModel):
    """One call of a reusable workflow (`jobs.<id>.uses: ./.github/workflows/x.yml`) a planned job runs within.

    The planner expands a call into jobs of the run; each of them carries the calls it is nested in, outermost
    first, so that the scheduler can evaluate the call's `with:` and `if:`, group its jobs as one `needs` entry
    and compute the call's `outputs`, and the runner can hand the called jobs only the secrets passed to them.
    """

    model_config = ConfigDict(frozen=True)

    job_id: str
    """The calling job's id in the run, one per matrix leg of the caller (`ci.call`, `ci.call.2`)."""
    job_key: str
    """The calling job's key as written in its workflow: what its dependants name in `needs`."""
    workflow: str
    """The called workflow file, relative to the repository."""
    name: str
    """The calling job's display name (its matrix values included)."""
    needs: list[str] = Field(default_factory=list)
    """The ids of the jobs the caller needs (every job a needed call expanded to): its `needs` context."""
    condition: str | None = None
    """The caller's `if:`, which gates the whole call."""
    with_: dict[str, Any] = Field(default_factory=dict)
    """The caller's `with:`, unevaluated: values may read github, inputs, vars, needs, matrix and strategy."""
    inputs: dict[str, Any] = Field(default_factory=dict)
    """The called workflow's `on.workflow_call.inputs` (name → type, default, required)."""
    secrets: dict[str, str] = Field(default_factory=dict)
    """The caller's `secrets:` (name → expression over the caller's secrets), unless `inherit_secrets`."""
    inherit_secrets: bool = False
    """`secrets: inherit`: the called jobs see every secret the caller sees."""
    outputs: dict[str, str] = Field(default_factory=dict)
    """The called workflow's `on.workflow_call.outputs` (name → value expression over its `jobs` context)."""
    matrix: dict[str, Any] | None = None
    """The caller's matrix leg, when it has a matrix."""
    strategy: dict[str, Any] = Field(default_factory=dict)
    """The caller's `strategy:` without its matrix (`fail-fast`, `max-parallel`), which its legs follow."""
    matrix_expression: str | dict[str, Any] | None = None
    """The caller's `strategy.matrix` as written when it is computed from expressions: the call is planned once,
    its jobs standing for every leg's, and the scheduler expands it into legs (a `MatrixExpanded` for each of
    its jobs, then their `JobPlanned`s per leg) once the jobs the caller needs have finished."""
    concurrency: Any = None
    """The caller's `concurrency:`, unevaluated: the call's jobs hold its group together, as one entry."""
    workflow_concurrency: Any = None
    """The called workflow's own top-level `concurrency:`, unevaluated (it reads the caller's `github` and the
    call's `inputs`): held the same way, once the caller's is."""


class JobPlanned(RunEvent):
    """A job of a planned workflow, with everything the scheduler and the runner need to run it."""

    job_id: str
    workflow: str
    job_key: str
    name: str
    workflow_name: str = ""
    """The triggered workflow's `name:` (its path when it has none), which `github.workflow` reads; empty in
    events from before it was recorded."""
    needs: list[str] = Field(default_factory=list)
    condition: str | None = None
    runs_on: list[str] = Field(default_factory=list)
    spec: dict[str, Any] = Field(default_factory=dict)
    workflow_env: dict[str, str] = Field(default_factory=dict)
    workflow_defaults: dict[str, Any] = Field(default_factory=dict)
    matrix: dict[str, Any] | None = None
    call: list[CallFrame] = Field(default_factory=list)
    """The reusable-workflow calls this job runs within, outermost first; empty for a job of the triggered
    workflow itself. `workflow` stays the triggered workflow; `job_key` is the path of keys (`call/build`)."""
    matrix_expression: str | dict[str, Any] | None = None
    """`strategy.matrix` as written when it is computed from expressions (`${{ fromJSON(needs.x.outputs.m) }}`,
    or a mapping with such parts): the job is planned once, unexpanded, and the scheduler expands it into legs
    (`MatrixExpanded`, then a `JobPlanned` per leg) once the jobs it needs have finished."""


class JobQueued(RunEvent):
    """The job's `needs` finished and its `if:` held: it waits for a runner."""

    job_id: str
    attempt: int = 1
    labels: list[str] = Field(default_factory=list)
    needs: dict[str, NeedResult] = Field(default_factory=dict)
    """The `needs` context: each needed job's key with its result and outputs."""
    inputs: dict[str, Any] | None = None
    """The `inputs` context of a job of a called workflow (its caller's `with:`, typed and defaulted); None
    for a job of the triggered workflow, which reads the run's inputs."""
    strategy: dict[str, Any] | None = None
    """The `strategy` context: `fail-fast`, `job-index`, `job-total` and `max-parallel` of the job's matrix (a job
    without one is leg 0 of 1); None in events from before it was recorded."""
    run_number: int | None = None
    """`github.run_number` of the job's workflow (see `RunNumbered`); None in events from before it was
    recorded."""
    run_attempt: int | None = None
    """`github.run_attempt`: 1, and one more for each re-run of the run (a job's `attempt` also counts its
    automatic retries); None in events from before it was recorded."""
    callers: list[dict[str, Any]] = Field(default_factory=list)
    """For a job of a called workflow, the `needs` and `inputs` contexts of each of its callers, outermost first:
    what the values of a caller's `secrets:` may read besides its secrets."""


class JobSkipped(RunEvent):
    """The job will not run: its `if:` was false or a job it needs did not succeed."""

    job_id: str
    reason: str


class JobAssigned(RunEvent):
    """A runner holds the lease on this attempt of the job."""

    job_id: str
    attempt: int = 1
    runner_id: str
    lease_id: str


class JobStarted(RunEvent):
    """A runner began executing the job."""

    job_id: str
    attempt: int = 1
    runner_id: str


class StepStarted(RunEvent):
    """A step of the job began."""

    job_id: str
    attempt: int = 1
    step_index: int
    step_id: str | None = None
    name: str


class StepLogged(RunEvent):
    """A batch of lines a step printed, in order; `first_line` numbers the first of them within the job."""

    job_id: str
    attempt: int = 1
    step_index: int
    first_line: int
    lines: list[LogLine]


class StepCompleted(RunEvent):
    """A step ended. `outcome` is before `continue-on-error`, `conclusion` after it."""

    job_id: str
    attempt: int = 1
    step_index: int
    outcome: Conclusion
    conclusion: Conclusion
    outputs: dict[str, str] = Field(default_factory=dict)
    step_id: str | None = None
    name: str = ""
    annotations: list[Annotation] = Field(default_factory=list)
    summary: str = ""
    """What the step wrote to `$GITHUB_STEP_SUMMARY` (Markdown), masked like its log."""


class JobCompleted(RunEvent):
    """A job ended, with its evaluated `outputs`."""

    job_id: str
    attempt: int = 1
    conclusion: Conclusion
    outputs: dict[str, str] = Field(default_factory=dict)
    error: str | None = None


class ArtifactUploaded(RunEvent):
    """A job's action uploaded an artifact (`actions/upload-artifact`); its runner's results service keeps it."""

    job_id: str
    attempt: int = 1
    artifact_id: int
    name: str
    size: int
    digest: str = ""
    """`sha256:<hex>` of the artifact's contents (its zip)."""


class ArtifactDeleted(RunEvent):
    """A job's action deleted an artifact of its run (`overwrite: true`, or `@actions/artifact`'s delete)."""

    job_id: str
    attempt: int = 1
    artifact_id: int
    name: str


class RunCompleted(RunEvent):
    """Every job of every planned workflow ended, or the run was rejected."""

    conclusion: Conclusion


class RunCancelRequested(RunEvent):
    """Someone asked for the run to stop."""

    reason: str = ""
    requested_by: str = ""


class SealedSecret(BaseModel):
    """A secret encrypted with its own data key, that key wrapped by a key-encryption key (envelope encryption).

    Only the holder of the key named `key_id` can unwrap the data key; the event log never sees the secret.
    Binary fields are base64 text.
    """

    model_config = ConfigDict(frozen=True)

    key_id: str
    wrapped_key: str
    nonce: str
    ciphertext: str


class RepositoryRegistered(Event):
    """A repository Conveyor may run workflows of, by name: a local path or a clone URL.

    Registering a name again replaces what was registered under it.
    """

    name: str
    url: str
    default_branch: str = "main"
    github: str | None = None
    """The repository's `owner/name` on GitHub, which its webhook deliveries name."""
    webhook_secret: SealedSecret | None = None
    """The secret GitHub signs deliveries with, encrypted."""
    token: SealedSecret | None = None
    """A token for GitHub's API, encrypted."""
    app_id: str | None = None
    """A GitHub App installed on the repository, whose installation tokens are used instead of `token`."""
    installation_id: int | None = None
    """The app's installation that covers the repository."""
    app_private_key: SealedSecret | None = None
    """The app's private key (PEM), encrypted: it signs the JWTs that buy installation tokens."""


class EventDeadLettered(Event):
    """A consumer could not handle an event; it moved on and left the reason here."""

    consumer: str
    event_id: str
    failed_type: str
    position: int
    reason: str
