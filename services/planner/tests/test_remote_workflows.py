"""Planning calls of reusable workflows of other repositories (`owner/repo/.github/workflows/x.yml@ref`), read
with real git from repositories under tmp_path (the base URL), from the cache and from an offline folder."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest
from conveyor_events import JobPlanned, RunEvent, RunRejected, RunRequested
from conveyor_planner.adapters import RemoteWorkflowSource
from conveyor_planner.domain import RemoteWorkflowError, plan_run

pytestmark = pytest.mark.timeout(60)

_ENV = {
    "GIT_AUTHOR_NAME": "t",
    "GIT_AUTHOR_EMAIL": "t@example.com",
    "GIT_COMMITTER_NAME": "t",
    "GIT_COMMITTER_EMAIL": "t@example.com",
    "GIT_CONFIG_GLOBAL": "/dev/null",
    "GIT_CONFIG_NOSYSTEM": "1",
    "PATH": "/usr/bin:/bin:/usr/local/bin",
}

BUILD = """
on:
  workflow_call:
    inputs:
      target: {type: string, required: true}
    secrets:
      token: {required: true}
    outputs:
      artifact:
        value: ${{ jobs.package.outputs.name }}
jobs:
  package:
    runs-on: x
    outputs:
      name: ${{ steps.p.outputs.name }}
    steps: [{id: p, run: 'echo ${{ inputs.target }}'}]
"""

OUTER = """
on: workflow_call
jobs:
  first:
    runs-on: x
    steps: [{run: 'true'}]
  inner:
    needs: first
    uses: ./.github/workflows/leaf.yml
"""

LEAF = "on: workflow_call\njobs:\n  {job}:\n    runs-on: x\n    steps: [{{run: 'true'}}]\n"


def _git(cwd: Path, *args: str) -> str:
    done = subprocess.run(["git", *args], cwd=cwd, env=_ENV, capture_output=True, text=True, check=True)
    return done.stdout.strip()


class Remotes:
    """Repositories `<base>/<owner>/<repo>` (bare, as on a server), each with its workflows tagged `v1`."""

    def __init__(self, tmp_path: Path) -> None:
        self.tmp_path = tmp_path
        self.base = tmp_path / "remote"

    def add(self, repository: str, workflows: dict[str, str]) -> str:
        """Publish `workflows` (file name → text) as `repository` at tag `v1`; the commit's sha."""
        work = self.tmp_path / "work" / repository
        work.mkdir(parents=True)
        _git(work, "init", "-q", "-b", "main")
        for name, text in workflows.items():
            (work / ".github" / "workflows").mkdir(parents=True, exist_ok=True)
            (work / ".github" / "workflows" / name).write_text(text)
        (work / "README").write_text("not a workflow\n")
        _git(work, "add", "-A")
        _git(work, "commit", "-q", "-m", "v1")
        _git(work, "tag", "v1")
        _git(self.tmp_path, "clone", "-q", "--bare", str(work), str(self.base / repository))
        return _git(work, "rev-parse", "HEAD")

    def source(self, offline_dir: Path | None = None) -> RemoteWorkflowSource:
        return RemoteWorkflowSource(self.tmp_path / "cache", base_url=str(self.base), offline_dir=offline_dir)


@pytest.fixture
def remotes(tmp_path: Path) -> Remotes:
    return Remotes(tmp_path)


def request() -> RunRequested:
    ref = "refs/heads/main"
    return RunRequested(run_id="run-1", repository="/repo", ref=ref, sha="a" * 40, payload={"ref": ref})


def plan(remotes: Remotes, files: dict[str, str]) -> list[RunEvent]:
    own = {f".github/workflows/{name}": text for name, text in files.items()}
    return plan_run(request(), own, remotes.source())


def jobs_of(events: list[RunEvent]) -> dict[str, JobPlanned]:
    assert not [e for e in events if isinstance(e, RunRejected)], events
    return {e.job_id: e for e in events if isinstance(e, JobPlanned)}


def caller(uses: str, extra: str = "") -> str:
    return f"on: push\njobs:\n  call:\n    uses: {uses}\n{extra}"


CALLER = caller(
    "octo/shared/.github/workflows/build.yml@v1",
    "    with: {target: release}\n    secrets: {token: '${{ secrets.DEPLOY }}'}\n"
    "  report:\n    needs: call\n    runs-on: x\n    steps: [{run: 'echo ${{ needs.call.outputs.artifact }}'}]\n",
)


def test_a_remote_call_expands_with_its_inputs_secrets_and_outputs(remotes: Remotes) -> None:
    remotes.add("octo/shared", {"build.yml": BUILD})

    jobs = jobs_of(plan(remotes, {"ci.yml": CALLER}))

    assert list(jobs) == ["ci.call/package", "ci.report"]
    package = jobs["ci.call/package"]
    assert (package.workflow, package.job_key, package.name) == (
        ".github/workflows/ci.yml",
        "call/package",
        "call / package",
    )
    assert package.spec["steps"][0]["run"] == "echo ${{ inputs.target }}"
    [frame] = package.call
    assert frame.workflow == "octo/shared/.github/workflows/build.yml@v1"
    assert frame.with_ == {"target": "release"}
    assert frame.inputs == {"target": {"type": "string", "required": True}}
    assert frame.secrets == {"token": "${{ secrets.DEPLOY }}"}
    assert frame.outputs == {"artifact": "${{ jobs.package.outputs.name }}"}
    assert jobs["ci.report"].needs == ["ci.call/package"]


def test_secrets_inherit_and_a_commit_sha_as_the_ref(remotes: Remotes) -> None:
    sha = remotes.add("octo/shared", {"build.yml": BUILD})

    text = caller(f"octo/shared/.github/workflows/build.yml@{sha}", "    with: {target: x}\n    secrets: inherit\n")
    [job] = jobs_of(plan(remotes, {"ci.yml": text})).values()

    assert job.call[0].inherit_secrets
    assert job.call[0].workflow == f"octo/shared/.github/workflows/build.yml@{sha}"


def test_a_remote_workflows_local_call_reads_its_own_repository(remotes: Remotes) -> None:
    remotes.add("octo/shared", {"outer.yml": OUTER, "leaf.yml": LEAF.format(job="theirs")})
    own = {"ci.yml": caller("octo/shared/.github/workflows/outer.yml@v1"), "leaf.yml": LEAF.format(job="ours")}

    jobs = jobs_of(plan(remotes, own))

    assert list(jobs) == ["ci.call/first", "ci.call/inner/theirs"]
    assert [frame.workflow for frame in jobs["ci.call/inner/theirs"].call] == [
        "octo/shared/.github/workflows/outer.yml@v1",
        "octo/shared/.github/workflows/leaf.yml@v1",
    ]
    assert jobs["ci.call/inner/theirs"].needs == ["ci.call/first"]


def test_two_calls_of_one_repository_fetch_it_once(remotes: Remotes, tmp_path: Path) -> None:
    remotes.add("octo/shared", {"leaf.yml": LEAF.format(job="leaf")})
    text = caller("octo/shared/.github/workflows/leaf.yml@v1", "    strategy: {matrix: {n: [1, 2, 3]}}\n")

    class Counting(RemoteWorkflowSource):
        calls = 0

        def workflow_files(self, repository: str, ref: str) -> dict[str, str]:
            Counting.calls += 1
            return super().workflow_files(repository, ref)

    source = Counting(tmp_path / "c", base_url=str(remotes.base))
    events = plan_run(request(), {".github/workflows/ci.yml": text}, source)

    assert list(jobs_of(events)) == ["ci.call.1/leaf", "ci.call.2/leaf", "ci.call.3/leaf"]
    assert Counting.calls == 1


ENDINGS = {
    "missing@v1": "does not appear to be a git repository",
    "shared@v9": "no commit for ref 'v9'",
    "shared@v1": "which does not exist in octo/shared at 'v1'",
}
"""How each failure ends: git's own reason, or the planner's."""


@pytest.mark.parametrize(
    ("uses", "message"),
    [
        (
            "octo/missing/.github/workflows/build.yml@v1",
            "job 'call': cannot read octo/missing/.github/workflows/build.yml@v1: ",
        ),
        (
            "octo/shared/.github/workflows/build.yml@v9",
            "job 'call': cannot read octo/shared/.github/workflows/build.yml@v9: ",
        ),
        (
            "octo/shared/.github/workflows/deploy.yml@v1",
            "job 'call': calls octo/shared/.github/workflows/deploy.yml@v1, "
            "which does not exist in octo/shared at 'v1'",
        ),
    ],
    ids=["missing-repository", "missing-ref", "missing-file"],
)
def test_a_remote_call_that_cannot_be_read_rejects_its_workflow_naming_the_caller(
    remotes: Remotes, uses: str, message: str
) -> None:
    remotes.add("octo/shared", {"build.yml": BUILD})

    events = plan(remotes, {"ci.yml": caller(uses, "    with: {target: x}\n    secrets: inherit\n")})

    [rejected] = [e for e in events if isinstance(e, RunRejected)]
    assert rejected.workflow == ".github/workflows/ci.yml"
    assert rejected.reason.startswith(message), rejected.reason
    assert rejected.reason.endswith(ENDINGS[uses.rsplit("@", 1)[0].split("/")[1] + "@" + uses.rsplit("@", 1)[1]])
    assert rejected.problems[0].path == ".github/workflows/ci.yml"
    assert rejected.problems[0].message == rejected.reason
    assert not [e for e in events if isinstance(e, JobPlanned)]


def test_a_cycle_across_repositories_is_refused_naming_the_chain(remotes: Remotes) -> None:
    remotes.add("octo/a", {"a.yml": "on: workflow_call\njobs:\n  to-b:\n    uses: octo/b/.github/workflows/b.yml@v1\n"})
    remotes.add("octo/b", {"b.yml": "on: workflow_call\njobs:\n  to-a:\n    uses: octo/a/.github/workflows/a.yml@v1\n"})

    [rejected] = [
        e for e in plan(remotes, {"ci.yml": caller("octo/a/.github/workflows/a.yml@v1")}) if isinstance(e, RunRejected)
    ]

    assert rejected.reason == (
        "job 'to-a': reusable workflows call each other in a cycle: .github/workflows/ci.yml → "
        "octo/a@v1:.github/workflows/a.yml → octo/b@v1:.github/workflows/b.yml → octo/a@v1:.github/workflows/a.yml"
    )
    assert rejected.problems[0].path == "octo/b/.github/workflows/b.yml@v1"


def test_the_nesting_limit_counts_levels_in_every_repository(remotes: Remotes) -> None:
    calling = "on: workflow_call\njobs:\n  next:\n    uses: {uses}\n"
    local = {f"w{n}.yml": calling.format(uses=f"./.github/workflows/w{n + 1}.yml") for n in range(1, 5)}
    remotes.add("octo/deep", {**local, "w5.yml": calling.format(uses="octo/deeper/.github/workflows/w6.yml@v1")})
    deeper = {f"w{n}.yml": calling.format(uses=f"./.github/workflows/w{n + 1}.yml") for n in range(6, 10)}
    remotes.add("octo/deeper", {**deeper, "w10.yml": LEAF.format(job="leaf")})

    [rejected] = [
        e
        for e in plan(remotes, {"ci.yml": caller("octo/deep/.github/workflows/w1.yml@v1")})
        if isinstance(e, RunRejected)
    ]

    assert rejected.reason.startswith("job 'next': reusable workflows nest deeper than 10 levels: ")
    assert rejected.reason.endswith("→ octo/deeper@v1:.github/workflows/w10.yml")


def test_a_remote_call_needs_a_source_of_remote_workflows() -> None:
    events = plan_run(request(), {".github/workflows/ci.yml": CALLER})

    [rejected] = [e for e in events if isinstance(e, RunRejected)]
    assert rejected.reason.startswith("job 'call': remote reusable workflows are not supported yet")


def test_fetched_workflows_are_kept_in_the_cache(remotes: Remotes, tmp_path: Path) -> None:
    remotes.add("octo/shared", {"build.yml": BUILD})
    first = remotes.source().workflow_files("octo/shared", "v1")
    shutil.rmtree(remotes.base)

    assert remotes.source().workflow_files("octo/shared", "v1") == first == {".github/workflows/build.yml": BUILD}
    assert sorted(p.name for p in (tmp_path / "cache" / "octo" / "shared" / "v1").iterdir()) == [".github"]


def test_an_offline_copy_is_read_first(remotes: Remotes, tmp_path: Path) -> None:
    folder = tmp_path / "offline" / "acme" / "tools" / "v3" / ".github" / "workflows"
    folder.mkdir(parents=True)
    (folder / "leaf.yaml").write_text(LEAF.format(job="offline"))
    (folder / "notes.txt").write_text("ignored\n")

    files = remotes.source(offline_dir=tmp_path / "offline").workflow_files("acme/tools", "v3")

    assert files == {".github/workflows/leaf.yaml": LEAF.format(job="offline")}
    assert not (tmp_path / "cache").exists()


@pytest.mark.parametrize(("repository", "ref"), [("../etc", "v1"), ("octo", "v1"), ("octo/shared", "--upload-pack")])
def test_names_that_are_not_a_repository_or_a_ref_are_refused(remotes: Remotes, repository: str, ref: str) -> None:
    with pytest.raises(RemoteWorkflowError):
        remotes.source().workflow_files(repository, ref)
