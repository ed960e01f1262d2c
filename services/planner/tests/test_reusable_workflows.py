"""Planning calls of reusable workflows of the same repository: expansion into jobs, and what is refused."""

from __future__ import annotations

import pytest
from conveyor_events import JobPlanned, RunEvent, RunPlanned, RunRejected, RunRequested
from conveyor_planner.domain import plan_run

CALLER = """
on: push
jobs:
  setup:
    runs-on: x
    steps: [{run: 'true'}]
  call:
    name: Build
    needs: setup
    if: github.ref == 'refs/heads/main'
    concurrency:
      group: build-${{ github.ref }}
      cancel-in-progress: true
    uses: ./.github/workflows/build.yml
    with:
      target: release
      level: ${{ needs.setup.outputs.level }}
    secrets:
      token: ${{ secrets.DEPLOY }}
  report:
    needs: call
    runs-on: x
    steps: [{run: 'true'}]
"""

BUILD = """
on:
  workflow_call:
    inputs:
      target: {type: string, required: true}
      level: {type: number, default: 1}
      debug: {type: boolean}
    secrets:
      token: {required: true}
    outputs:
      artifact:
        value: ${{ jobs.package.outputs.name }}
env:
  CALLED: yes
concurrency: build-${{ inputs.target }}
jobs:
  package:
    needs: compile
    runs-on: [self-hosted, "${{ inputs.target }}"]
    steps: [{run: 'true'}]
  compile:
    strategy:
      matrix:
        arch: [amd64, arm64]
    runs-on: x
    steps: [{run: 'true'}]
"""

LEAF = "on: workflow_call\njobs:\n  leaf:\n    runs-on: x\n    steps: [{run: 'true'}]\n"


def request(**more: object) -> RunRequested:
    ref = "refs/heads/main"
    return RunRequested(run_id="run-1", repository="/repo", ref=ref, sha="a" * 40, payload={"ref": ref}, **more)


def plan(files: dict[str, str], **more: object) -> list[RunEvent]:
    return plan_run(request(**more), {f".github/workflows/{name}": text for name, text in files.items()})


def jobs_of(events: list[RunEvent]) -> dict[str, JobPlanned]:
    assert not [e for e in events if isinstance(e, RunRejected)], events
    return {e.job_id: e for e in events if isinstance(e, JobPlanned)}


def caller(uses: str, extra: str = "") -> str:
    return f"on: push\njobs:\n  call:\n    uses: {uses}\n{extra}"


def test_a_call_expands_into_the_called_jobs_under_the_callers_id_with_needs_rewired() -> None:
    events = plan({"ci.yml": CALLER, "build.yml": BUILD})

    jobs = jobs_of(events)
    assert list(jobs) == ["ci.setup", "ci.call/package", "ci.call/compile.1", "ci.call/compile.2", "ci.report"]
    [planned] = [e for e in events if isinstance(e, RunPlanned)]
    assert planned.jobs == list(jobs)
    assert [e.workflow for e in events if isinstance(e, RunPlanned)] == [".github/workflows/ci.yml"]
    assert jobs["ci.call/compile.1"].needs == ["ci.setup"]
    assert jobs["ci.call/package"].needs == ["ci.call/compile.1", "ci.call/compile.2", "ci.setup"]
    assert jobs["ci.report"].needs == ["ci.call/package", "ci.call/compile.1", "ci.call/compile.2"]
    package = jobs["ci.call/package"]
    assert (package.workflow, package.job_key) == (".github/workflows/ci.yml", "call/package")
    assert package.name == "Build / package"
    assert jobs["ci.call/compile.2"].name == "Build / compile (arm64)"
    assert package.runs_on == ["self-hosted", "${{ inputs.target }}"]
    assert package.workflow_env == {"CALLED": "yes"}
    assert jobs["ci.setup"].call == []
    assert jobs["ci.report"].call == []


def test_the_call_frame_carries_what_the_scheduler_and_runner_evaluate_later() -> None:
    jobs = jobs_of(plan({"ci.yml": CALLER, "build.yml": BUILD}))

    [frame] = jobs["ci.call/package"].call
    assert (frame.job_id, frame.job_key, frame.workflow, frame.name) == (
        "ci.call", "call", ".github/workflows/build.yml", "Build"
    )
    assert frame.needs == ["ci.setup"]
    assert frame.condition == "github.ref == 'refs/heads/main'"
    assert frame.with_ == {"target": "release", "level": "${{ needs.setup.outputs.level }}"}
    assert frame.inputs["level"] == {"type": "number", "default": 1}
    assert frame.secrets == {"token": "${{ secrets.DEPLOY }}"}
    assert not frame.inherit_secrets
    assert frame.outputs == {"artifact": "${{ jobs.package.outputs.name }}"}
    assert frame.matrix is None
    assert frame.concurrency == {"group": "build-${{ github.ref }}", "cancel-in-progress": True}
    assert frame.workflow_concurrency == "build-${{ inputs.target }}"


def test_a_matrix_on_the_caller_makes_one_call_per_leg() -> None:
    text = caller("./.github/workflows/leaf.yml", "    strategy:\n      matrix:\n        os: [linux, mac]\n"
                  "    with: {}\n    secrets: inherit\n")
    jobs = jobs_of(plan({"ci.yml": text, "leaf.yml": LEAF}))

    assert list(jobs) == ["ci.call.1/leaf", "ci.call.2/leaf"]
    assert [job.name for job in jobs.values()] == ["call (linux) / leaf", "call (mac) / leaf"]
    assert [job.call[0].matrix for job in jobs.values()] == [{"os": "linux"}, {"os": "mac"}]
    assert [job.call[0].job_id for job in jobs.values()] == ["ci.call.1", "ci.call.2"]
    assert all(job.call[0].inherit_secrets for job in jobs.values())


def test_nested_calls_stack_their_frames_and_prefixes() -> None:
    middle = "on: workflow_call\njobs:\n  first:\n    runs-on: x\n    steps: [{run: 'true'}]\n" \
             "  inner:\n    needs: first\n    uses: ./.github/workflows/leaf.yml\n"
    after = "  after:\n    needs: call\n    runs-on: x\n    steps: [{run: 'true'}]\n"
    text = caller("./.github/workflows/middle.yml", after)
    jobs = jobs_of(plan({"ci.yml": text, "middle.yml": middle, "leaf.yml": LEAF}))

    assert list(jobs) == ["ci.call/first", "ci.call/inner/leaf", "ci.after"]
    leaf = jobs["ci.call/inner/leaf"]
    assert (leaf.job_key, leaf.name) == ("call/inner/leaf", "call / inner / leaf")
    assert [frame.job_id for frame in leaf.call] == ["ci.call", "ci.call/inner"]
    assert leaf.needs == ["ci.call/first"]
    assert jobs["ci.after"].needs == ["ci.call/first", "ci.call/inner/leaf"]


def test_a_request_for_a_dependant_job_plans_the_call_it_needs() -> None:
    jobs = jobs_of(plan({"ci.yml": CALLER, "build.yml": BUILD}, jobs=["report"]))

    assert "ci.call/package" in jobs
    assert "ci.report" in jobs


def test_a_named_workflow_may_call_one_it_does_not_name() -> None:
    jobs = jobs_of(plan({"ci.yml": CALLER, "build.yml": BUILD}, workflows=[".github/workflows/ci.yml"]))

    assert "ci.call/package" in jobs


def chain(levels: int) -> dict[str, str]:
    """`ci.yml` → `w1.yml` → ... → `w<levels-1>.yml`: `levels` workflows in all, the last one a leaf."""
    files = {"ci.yml": caller("./.github/workflows/w1.yml")}
    for level in range(1, levels):
        calling = f"on: workflow_call\njobs:\n  next:\n    uses: ./.github/workflows/w{level + 1}.yml\n"
        files[f"w{level}.yml"] = calling if level < levels - 1 else LEAF
    return files


def test_ten_levels_of_workflows_are_allowed() -> None:
    jobs = jobs_of(plan(chain(10)))

    assert list(jobs) == ["ci.call/next/next/next/next/next/next/next/next/leaf"]


def test_an_eleventh_level_is_refused_naming_the_chain() -> None:
    [rejected, *_] = [e for e in plan(chain(11)) if isinstance(e, RunRejected)]

    assert "reusable workflows nest deeper than 10 levels" in rejected.reason
    assert ".github/workflows/ci.yml → .github/workflows/w1.yml → " in rejected.reason
    assert rejected.reason.endswith("→ .github/workflows/w10.yml")


def calling(count: int, *, nested: bool = False) -> dict[str, str]:
    """`ci.yml` calling `count` different workflows, each a leaf; with `nested`, the last of them is called
    through a workflow of its own (which makes one more)."""
    files = {f"w{n}.yml": LEAF for n in range(count)}
    jobs = [f"  c{n}:\n    uses: ./.github/workflows/w{n}.yml\n" for n in range(count - 1)]
    if nested:
        files["middle.yml"] = f"on: workflow_call\njobs:\n  c:\n    uses: ./.github/workflows/w{count - 1}.yml\n"
        jobs.append("  last:\n    uses: ./.github/workflows/middle.yml\n")
    else:
        jobs.append(f"  last:\n    uses: ./.github/workflows/w{count - 1}.yml\n")
    files["ci.yml"] = "on: push\njobs:\n" + "".join(jobs)
    return files


def test_fifty_unique_workflows_may_be_called_and_a_fifty_first_is_refused() -> None:
    planned = plan(calling(50))
    twice = plan({**calling(50), "ci.yml": calling(50)["ci.yml"] + "  again:\n    uses: ./.github/workflows/w0.yml\n"})
    [rejected] = [e for e in plan(calling(50, nested=True)) if isinstance(e, RunRejected)]

    assert len(jobs_of(planned)) == 50
    assert len(jobs_of(twice)) == 51  # a workflow called again is not another unique one
    assert rejected.reason == (
        "job 'c': calls ./.github/workflows/w49.yml, one more than the 50 unique reusable workflows a workflow may "
        "call (its nested calls included)"
    )


CALL_BUILD = "./.github/workflows/build.yml"


def build(extra: str) -> dict[str, str]:
    """`ci.yml` calling `build.yml` with `extra` lines under the calling job."""
    return {"ci.yml": caller(CALL_BUILD, extra), "build.yml": BUILD}


def bad(name: str, text: str) -> dict[str, str]:
    """`ci.yml` calling `name`, which holds `text`."""
    return {"ci.yml": caller(f"./.github/workflows/{name}"), name: text}


@pytest.mark.parametrize(
    ("files", "message"),
    [
        (
            build("    secrets: {token: t}\n"),
            "job 'call': input 'target' is required by ./.github/workflows/build.yml but not given",
        ),
        (
            build("    with: {target: x, colour: red}\n    secrets: inherit\n"),
            "job 'call': input 'colour' is not defined by ./.github/workflows/build.yml",
        ),
        (
            build("    with: {target: x, level: high}\n    secrets: inherit\n"),
            "job 'call': input 'level' has type number, not the str 'high'",
        ),
        (
            build("    with: {target: x, debug: 'yes'}\n    secrets: inherit\n"),
            "job 'call': input 'debug' has type boolean, not the str 'yes'",
        ),
        (
            build("    with: {target: x}\n"),
            "job 'call': secret 'token' is required by ./.github/workflows/build.yml but not passed",
        ),
        (
            build("    with: {target: x}\n    secrets: {token: t, extra: e}\n"),
            "job 'call': secret 'extra' is not defined by ./.github/workflows/build.yml",
        ),
        (
            {"ci.yml": caller("octo/tools/.github/workflows/build.yml@v1")},
            "job 'call': remote reusable workflows are not supported yet: octo/tools/.github/workflows/build.yml@v1",
        ),
        (
            {"ci.yml": caller("./.github/workflows/missing.yml")},
            "job 'call': calls ./.github/workflows/missing.yml, which does not exist",
        ),
        (
            bad("push.yml", LEAF.replace("workflow_call", "pull_request")),
            "job 'call': calls ./.github/workflows/push.yml, which is not a reusable workflow",
        ),
        (
            bad("bad.yml", "on: workflow_call\njobs:\n  a:\n    stepz: []\n"),
            "job 'call': calls ./.github/workflows/bad.yml, which is not a valid workflow",
        ),
        (
            {"ci.yml": caller("./.github/workflows/ci.yml").replace("on: push", "on: [push, workflow_call]")},
            "job 'call': reusable workflows call each other in a cycle: "
            ".github/workflows/ci.yml → .github/workflows/ci.yml",
        ),
        (
            {
                "ci.yml": caller("./.github/workflows/a.yml"),
                "a.yml": "on: workflow_call\njobs:\n  to-b:\n    uses: ./.github/workflows/b.yml\n",
                "b.yml": "on: workflow_call\njobs:\n  to-a:\n    uses: ./.github/workflows/a.yml\n",
            },
            "job 'to-a': reusable workflows call each other in a cycle: "
            ".github/workflows/ci.yml → .github/workflows/a.yml → .github/workflows/b.yml → .github/workflows/a.yml",
        ),
    ],
    ids=[
        "missing-required-input",
        "unknown-input",
        "number-input-given-text",
        "boolean-input-given-text",
        "missing-required-secret",
        "unknown-secret",
        "remote-workflow",
        "missing-file",
        "not-reusable",
        "invalid-called-file",
        "self-call",
        "cycle",
    ],
)
def test_a_call_that_cannot_run_rejects_its_workflow_naming_the_caller(files: dict[str, str], message: str) -> None:
    events = plan(files)

    [rejected] = [e for e in events if isinstance(e, RunRejected) and e.workflow == ".github/workflows/ci.yml"]
    assert rejected.reason.startswith(message)
    assert rejected.problems[0].message == rejected.reason
    assert not [e for e in events if isinstance(e, JobPlanned) and e.workflow == ".github/workflows/ci.yml"]


def permitted(caller_permissions: str, called_permissions: str, middle: str = "") -> list[RunEvent]:
    """Plans ci.yml (workflow-level `caller_permissions`) calling leaf.yml, whose job has `called_permissions`;
    with `middle`, through a workflow of its own whose calling job has those permissions."""
    leaf = LEAF.replace("    runs-on: x\n", f"    runs-on: x\n    permissions: {called_permissions}\n")
    files = {"leaf.yml": leaf}
    target = "./.github/workflows/leaf.yml"
    if middle:
        files["middle.yml"] = f"on: workflow_call\njobs:\n  inner:\n    permissions: {middle}\n    uses: {target}\n"
        target = "./.github/workflows/middle.yml"
    files["ci.yml"] = f"on: push\npermissions: {caller_permissions}\njobs:\n  call:\n    uses: {target}\n"
    return plan(files)


def test_a_called_workflow_may_lower_permissions_but_not_raise_them() -> None:
    def refused(events: list[RunEvent]) -> list[str]:
        return [problem.message for e in events if isinstance(e, RunRejected) for problem in e.problems]

    assert refused(permitted("write-all", "{contents: read}")) == []
    assert refused(permitted("{contents: write}", "{contents: write}")) == []
    assert refused(permitted("{contents: read}", "{contents: write, packages: read}")) == [
        "job 'call': calls ./.github/workflows/leaf.yml, whose job 'leaf' is requesting 'contents: write', but is "
        "only allowed 'contents: read'",
        "job 'call': calls ./.github/workflows/leaf.yml, whose job 'leaf' is requesting 'packages: read', but is "
        "only allowed 'packages: none'",
    ]
    assert refused(permitted("read-all", "{id-token: write}")) == [
        "job 'call': calls ./.github/workflows/leaf.yml, whose job 'leaf' is requesting 'id-token: write', but is "
        "only allowed 'id-token: none'",
    ]
    # what a nested caller passes on is what it has, lowered: its callee may not take back what it gave up
    [message] = refused(permitted("write-all", "{contents: write}", middle="{contents: read}"))
    assert message.startswith("job 'inner': calls ./.github/workflows/leaf.yml, whose job 'leaf' is requesting")


def test_secret_names_are_not_case_sensitive() -> None:
    events = plan(build("    with: {target: x}\n    secrets: {TOKEN: t}\n"))

    assert not [e for e in events if isinstance(e, RunRejected)]
    assert jobs_of(events)["ci.call/package"].call[0].secrets == {"TOKEN": "t"}


def test_every_input_problem_of_a_call_is_reported() -> None:
    text = caller(CALL_BUILD, "    with: {colour: red, level: high}\n")
    [rejected] = [e for e in plan({"ci.yml": text, "build.yml": BUILD}) if isinstance(e, RunRejected)]

    assert [problem.message for problem in rejected.problems] == [
        "job 'call': input 'colour' is not defined by ./.github/workflows/build.yml",
        "job 'call': input 'level' has type number, not the str 'high'",
        "job 'call': input 'target' is required by ./.github/workflows/build.yml but not given",
    ]


def test_an_invalid_called_file_is_reported_with_its_own_problems() -> None:
    bad = "on: workflow_call\njobs:\n  a:\n    runs-on: x\n    stepz: []\n"
    events = plan({"ci.yml": caller("./.github/workflows/bad.yml"), "bad.yml": bad})

    [rejected] = [e for e in events if isinstance(e, RunRejected) and e.workflow == ".github/workflows/ci.yml"]
    assert rejected.problems[0].path == ".github/workflows/ci.yml"
    assert len(rejected.problems) > 1
    assert all(problem.path == ".github/workflows/bad.yml" and problem.line > 0 for problem in rejected.problems[1:])
