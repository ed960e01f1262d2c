"""The job graph: `needs` edges between the jobs of one workflow run.

`needs` maps each job id to the ids it needs, in file order. Every function here is pure and keeps
that order wherever it returns a list, so the planner and the scheduler decide deterministically.
A need naming a job that is not a key is an error the loader reports; here it is treated as a job
that never finishes (it blocks its dependents) and never appears in the output.
"""

from collections.abc import Collection, Mapping, Sequence

__all__ = ["ancestors", "find_cycle", "job_levels", "ready_jobs"]


def find_cycle(needs: Mapping[str, Sequence[str]]) -> list[str] | None:
    """Return one cycle as a path `[a, b, ..., a]` (a needs b needs ... needs a), or None.

    The search starts from the jobs in mapping order, so the cycle reported is deterministic.
    """
    done: set[str] = set()
    for root in needs:
        if root in done:
            continue
        # Iterative DFS: a deep chain of needs must not hit Python's recursion limit.
        path: list[str] = [root]
        on_path: dict[str, int] = {root: 0}
        stack: list[int] = [0]
        while path:
            job = path[-1]
            deps = needs.get(job, ())
            index = stack[-1]
            if index >= len(deps):
                done.add(job)
                del on_path[job]
                path.pop()
                stack.pop()
                continue
            stack[-1] = index + 1
            dep = deps[index]
            if dep in on_path:
                return [*path[on_path[dep] :], dep]
            if dep in done or dep not in needs:
                continue
            on_path[dep] = len(path)
            path.append(dep)
            stack.append(0)
    return None


def job_levels(needs: Mapping[str, Sequence[str]]) -> list[list[str]]:
    """Split the jobs into topological layers: each job comes after every job it needs.

    Layer 0 holds the jobs that need nothing; layer n the jobs whose deepest need is in layer n-1.
    Within a layer jobs keep the mapping's (file) order. Raises `ValueError` naming a cycle; a need
    of an unknown job is ignored here (the loader reports it).
    """
    cycle = find_cycle(needs)
    if cycle is not None:
        raise ValueError(f"The job graph has a cycle: {' -> '.join(cycle)}")
    level: dict[str, int] = {}
    for root in needs:
        _assign_level(needs, root, level)
    layers: list[list[str]] = [[] for _ in range(max(level.values(), default=-1) + 1)]
    for job in needs:
        layers[level[job]].append(job)
    return layers


def _assign_level(needs: Mapping[str, Sequence[str]], root: str, level: dict[str, int]) -> None:
    stack = [root]
    while stack:
        job = stack[-1]
        if job in level:
            stack.pop()
            continue
        pending = [dep for dep in needs[job] if dep in needs and dep not in level]
        if pending:
            stack.extend(pending)
            continue
        level[job] = 1 + max((level[dep] for dep in needs[job] if dep in needs), default=-1)
        stack.pop()


def ready_jobs(needs: Mapping[str, Sequence[str]], finished: Collection[str], started: Collection[str]) -> list[str]:
    """Jobs, in mapping order, whose needs have all finished and which are neither started nor finished.

    "Finished" means concluded in any way (success, failure, skipped): whether a ready job then runs
    is decided by its `if:` condition, not here.
    """
    finished_set = set(finished)
    started_set = set(started)
    return [
        job
        for job, deps in needs.items()
        if job not in started_set and job not in finished_set and all(dep in finished_set for dep in deps)
    ]


def ancestors(needs: Mapping[str, Sequence[str]], job: str) -> set[str]:
    """Every job `job` needs directly or transitively (not including `job` itself unless in a cycle)."""
    seen: set[str] = set()
    stack = list(needs.get(job, ()))
    while stack:
        dep = stack.pop()
        if dep in seen:
            continue
        seen.add(dep)
        stack.extend(needs.get(dep, ()))
    return seen
