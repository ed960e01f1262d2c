"""Property: whatever text arrives, load_workflow returns a Workflow or raises WorkflowError, nothing else."""

from typing import Any

import yaml
from conveyor_workflow._loader import load_workflow
from conveyor_workflow._model import Workflow, WorkflowError
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

KEYS = st.sampled_from(
    [
        "on", "jobs", "name", "run-name", "env", "defaults", "run", "shell", "concurrency", "group",
        "permissions", "contents", "push", "pull_request", "schedule", "cron", "branches", "branches-ignore",
        "paths", "tags", "types", "workflow_dispatch", "workflow_call", "inputs", "outputs", "secrets", "type",
        "default", "options", "required", "value", "build", "test", "needs", "if", "runs-on", "labels", "steps",
        "id", "uses", "with", "strategy", "matrix", "include", "exclude", "container", "image", "services",
        "timeout-minutes", "continue-on-error", "environment", "url", "working-directory", "x", "1",
    ]
)  # fmt: skip
SCALARS = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=20),
    st.sampled_from(
        [
            "${{ github.ref }}", "${{ steps.a.outputs.b }}", "${{ secrets.X", "push", "ubuntu-latest",
            "a/b@v1", "./.github/workflows/x.yml", "* * * * *", "61 * * * *", "inherit", "read-all", "choice",
            "success()", "${{ ')' }}", "${{ matrix.os }}", "echo hi",
        ]
    ),
)  # fmt: skip
VALUES: st.SearchStrategy[Any] = st.recursive(
    SCALARS,
    lambda children: st.one_of(st.lists(children, max_size=4), st.dictionaries(KEYS, children, max_size=5)),
    max_leaves=40,
)
DOCUMENTS = st.dictionaries(KEYS, VALUES, max_size=6)
YAMLISH = st.text(
    alphabet=st.sampled_from(list("onjbs:-[]{}&*!|>'\"#\t\n ,?%@`~.$ax1")) | st.characters(), max_size=300
)


def _loads_or_refuses(text: str) -> None:
    diagnostics = []
    try:
        workflow = load_workflow(text, "w.yml")
    except WorkflowError as error:
        diagnostics = error.diagnostics
    else:
        assert Workflow.model_validate(workflow.model_dump(mode="json")) == workflow
        return
    assert diagnostics
    assert all(d.line >= 1 and d.column >= 1 for d in diagnostics)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(YAMLISH)
def test_random_text_never_raises_anything_but_workflow_error(text: str) -> None:
    _loads_or_refuses(text)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(DOCUMENTS, st.sampled_from([None, "'", '"']))
def test_random_structures_never_raise_anything_but_workflow_error(document: dict[str, Any], style: str | None) -> None:
    _loads_or_refuses(yaml.safe_dump(document, default_style=style, allow_unicode=True))


@settings(max_examples=150, deadline=None)
@given(VALUES, VALUES, VALUES)
def test_random_jobs_and_steps_never_raise_anything_but_workflow_error(job: Any, step: Any, on: Any) -> None:
    document = {
        "on": on,
        "jobs": {"a": job, "b": {"runs-on": "x", "steps": [step, {"run": "echo"}]}},
    }
    _loads_or_refuses(yaml.safe_dump(document))
