"""`load_workflow`: a workflow file's text to a validated `Workflow`, or every problem found in it."""

from __future__ import annotations

from typing import Any

import yaml

from conveyor_workflow import _schema_expr as places
from conveyor_workflow._load_events import read_on
from conveyor_workflow._load_jobs import build, read_concurrency, read_defaults, read_job, read_permissions
from conveyor_workflow._loader_yaml import Problem, compose
from conveyor_workflow._model import Diagnostic, Job, Workflow, WorkflowError
from conveyor_workflow._schema import Reader

_TOP = ("name", "run-name", "on", "permissions", "env", "defaults", "concurrency", "jobs")


def load_workflow(text: str, path: str, *, max_bytes: int = 1_000_000) -> Workflow:
    """Parse and validate a workflow file.

    Raises `WorkflowError` listing every problem found (file, 1-based line and column, GitHub-like
    message) when the file is not a valid GitHub Actions workflow.
    """
    composed = compose(text, max_bytes=max_bytes)
    reader = Reader()
    reader.problems.extend(composed.problems)
    workflow = None if composed.node is None else _read_workflow(reader, composed.node, path)
    if reader.problems or workflow is None:
        raise WorkflowError(_diagnostics(path, reader.problems))
    return workflow


def _diagnostics(path: str, problems: list[Problem]) -> list[Diagnostic]:
    unique = sorted(set(problems), key=lambda p: (p.line, p.column))
    return [Diagnostic(path=path, line=p.line, column=p.column, message=p.message) for p in unique]


def _read_workflow(reader: Reader, root: yaml.Node, path: str) -> Workflow | None:
    if not isinstance(root, yaml.MappingNode):
        reader.unexpected(root)
        return None
    found = reader.fields(root, _TOP, ("on", "jobs")) or {}
    data: dict[str, Any] = {"path": path}
    if "name" in found:
        data["name"] = reader.text(found["name"][1], None)
    if "run-name" in found:
        data["run_name"] = reader.text(found["run-name"][1], places.RUN_NAME)
    if "on" in found:
        data["on"] = read_on(reader, found["on"][1])
    if "permissions" in found:
        data["permissions"] = read_permissions(reader, found["permissions"][1])
    if "env" in found:
        data["env"] = reader.text_map(found["env"][1], places.WORKFLOW_ENV)
    if "defaults" in found:
        data["defaults"] = read_defaults(reader, found["defaults"][1], None)
    if "concurrency" in found:
        data["concurrency"] = read_concurrency(reader, found["concurrency"][1], places.WORKFLOW_CONCURRENCY)
    if "jobs" in found:
        data["jobs"] = _read_jobs(reader, found["jobs"][1])
    return build(reader, root, Workflow, data)


def _read_jobs(reader: Reader, node: yaml.Node) -> dict[str, Job]:
    entries = reader.pairs(node)
    if entries is None:
        return {}
    jobs: dict[str, Job] = {}
    keys: dict[str, yaml.Node] = {}
    for job_id, key, value in entries:
        if job_id in keys:
            continue
        if "${{" in job_id:
            reader.error(key, "A template expression is not allowed in this context")
        reader.identifier(key, job_id, reserved=True)
        keys[job_id] = key
        job = read_job(reader, job_id, key, value)
        if job is not None:
            jobs[job_id] = job
    _check_needs(reader, node, keys, jobs)
    return jobs


def _check_needs(reader: Reader, node: yaml.Node, keys: dict[str, yaml.Node], jobs: dict[str, Job]) -> None:
    known = {job_id: [need for need in job.needs if need in keys] for job_id, job in jobs.items()}
    for job_id, job in jobs.items():
        for need in job.needs:
            if need not in keys:
                reader.error(keys[job_id], f"Job '{job_id}' depends on unknown job '{need}'.")
    if (keys and not any(not job.needs for job in jobs.values()) and len(jobs) == len(keys)) or not keys:
        reader.error(node, "The workflow must contain at least one job with no dependencies.")
    for job_id, need in _cycle_edges(known):
        reader.error(
            keys[job_id],
            f"Job '{job_id}' depends on job '{need}' which creates a cycle in the dependency graph.",
        )


def _cycle_edges(needs: dict[str, list[str]]) -> list[tuple[str, str]]:
    """One closing edge per cycle found by an iterative depth-first search, in file order."""
    state: dict[str, int] = {}  # 1: on the stack, 2: done
    edges: list[tuple[str, str]] = []
    for start in needs:
        if start in state:
            continue
        stack: list[tuple[str, int]] = [(start, 0)]
        state[start] = 1
        while stack:
            job_id, index = stack[-1]
            targets = needs.get(job_id, [])
            if index == len(targets):
                state[job_id] = 2
                stack.pop()
                continue
            stack[-1] = (job_id, index + 1)
            target = targets[index]
            if state.get(target) == 1:
                edges.append((job_id, target))
            elif target not in state:
                state[target] = 1
                stack.append((target, 0))
    return edges
