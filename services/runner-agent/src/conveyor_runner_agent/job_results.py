"""What a job's actions reach GitHub's results service with (artifacts, caches), and what it tells the job back.

Mixed into `JobRun`, which sets what is declared here.
"""

from __future__ import annotations

from typing import Any

from conveyor_events import (
    ArtifactDeleted,
    ArtifactUploaded,
    JobPlanned,
    JobQueued,
    RunEvent,
    RunRequested,
    deterministic_id,
)

from conveyor_runner_agent.adapters.results import Caller, ResultsService
from conveyor_runner_agent.domain import Masker


class JobResults:
    """The job's runtime token and results service URL, made when an action first needs them."""

    request: RunRequested
    plan: JobPlanned
    results_service: ResultsService | None
    masker: Masker
    job_minutes: float
    _runtime_token: str | None
    _watched: Caller | None

    @property
    def event(self) -> JobQueued:
        raise NotImplementedError

    def _github(self, workspace: str | None = None) -> dict[str, Any]:
        raise NotImplementedError

    def _enqueue(self, event: RunEvent, kind: str, index: int | None = None) -> None:
        raise NotImplementedError

    async def runtime_variables(self, *, in_container: bool) -> dict[str, str]:
        """What an action reaches the results service (artifacts, caches) with: its URL and the job's runtime token.

        As on GitHub, JavaScript and Docker actions get them; `run:` steps do not. The token is masked.
        """
        service = self.results_service
        if service is None:
            return {}
        url = await service.url(for_containers=in_container)
        if self._runtime_token is None:
            self._watched = self._caller()
            self._runtime_token = service.runtime_token(self._watched, lifetime=(self.job_minutes + 60) * 60)
            self.masker.add(self._runtime_token)
            service.watch(self._watched, self._report_artifact)
        token = self._runtime_token
        return {
            "ACTIONS_RUNTIME_TOKEN": token,
            "ACTIONS_RESULTS_URL": url,
            "ACTIONS_RUNTIME_URL": url,
            "ACTIONS_CACHE_SERVICE_V2": "true",
        }

    def _report_artifact(self, event: RunEvent) -> None:
        """An artifact an action uploaded or deleted: appended in its place among the job's events."""
        assert isinstance(event, ArtifactUploaded | ArtifactDeleted)
        self._enqueue(event, type(event).__name__, event.artifact_id)

    def _caller(self) -> Caller:
        """The job as the results service knows it: its run, and the refs whose caches it saves and restores.

        As on GitHub, a job saves caches under its run's ref and restores them from that ref, then from a pull
        request's base branch, then from the default branch.
        """
        github = self._github()
        ref = str(github["ref"] or "")
        default = self.request.default_branch or (self.request.payload.get("repository") or {}).get("default_branch")
        scopes = [ref] + ([f"refs/heads/{github['base_ref']}"] if github.get("base_ref") else [])
        scopes += [f"refs/heads/{default}"] if default else []
        return Caller(
            run_id=self.request.run_id,
            job_id=self.plan.job_id,
            attempt=self.event.attempt,
            job_backend_id=deterministic_id(self.request.run_id, self.plan.job_id),
            repository=self.request.repository,
            scope=ref,
            scopes=tuple(dict.fromkeys(scopes)),
        )
