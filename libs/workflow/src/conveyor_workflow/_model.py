"""The loaded workflow: frozen pydantic models, and the diagnostics a bad workflow file produces."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field


class _Frozen(BaseModel):
    # Mutable defaults below are factories: pydantic deep-copies a plain `{}` default on every validation.
    model_config = ConfigDict(frozen=True, extra="forbid")


class Diagnostic(_Frozen):
    """One problem in a workflow file; `line` and `column` are 1-based.

    `str()` reads like GitHub's: `.github/workflows/ci.yml (Line: 7, Col: 9): Unexpected value 'foo'`.
    """

    path: str
    line: int
    column: int
    message: str

    def __str__(self) -> str:
        return f"{self.path} (Line: {self.line}, Col: {self.column}): {self.message}"


class WorkflowError(Exception):
    """A workflow file that cannot be used; `.diagnostics` lists every problem found, in file order."""

    def __init__(self, diagnostics: list[Diagnostic]) -> None:
        super().__init__(diagnostics)
        self.diagnostics = diagnostics

    def __str__(self) -> str:
        return "\n".join(str(d) for d in self.diagnostics)


class Step(_Frozen):
    """One entry of `jobs.<job_id>.steps`: exactly one of `run` and `uses` is set."""

    id: str | None = None
    name: str | None = None
    if_: str | None = None
    uses: str | None = None
    run: str | None = None
    shell: str | None = None
    with_: dict[str, Any] = Field(default_factory=dict)
    env: dict[str, str] = Field(default_factory=dict)
    continue_on_error: bool | str = False
    timeout_minutes: float | str | None = None
    working_directory: str | None = None


class Job(_Frozen):
    """One entry of `jobs`: either a job with `steps` or a call of a reusable workflow (`uses`)."""

    id: str
    name: str | None = None
    needs: tuple[str, ...] = ()
    if_: str | None = None
    runs_on: Any = None
    environment: Any = None
    concurrency: Any = None
    outputs: dict[str, str] = Field(default_factory=dict)
    env: dict[str, str] = Field(default_factory=dict)
    defaults: dict[str, Any] = Field(default_factory=dict)
    timeout_minutes: float | str | None = None
    strategy: dict[str, Any] | None = None
    continue_on_error: bool | str = False
    container: Any = None
    services: dict[str, Any] = Field(default_factory=dict)
    uses: str | None = None
    with_: dict[str, Any] = Field(default_factory=dict)
    secrets: Any = None
    steps: tuple[Step, ...] = ()
    permissions: Any = None
    retry: Any = None
    """Conveyor's `retry:` (beyond GitHub): a number of attempts, or `{max-attempts, on}`."""


class Workflow(_Frozen):
    """A validated workflow file. `on` maps each event name to its configuration (`{}` when bare)."""

    path: str
    name: str | None = None
    run_name: str | None = None
    on: dict[str, Any] = Field(default_factory=dict)
    env: dict[str, str] = Field(default_factory=dict)
    defaults: dict[str, Any] = Field(default_factory=dict)
    permissions: Any = None
    concurrency: Any = None
    jobs: dict[str, Job] = {}
