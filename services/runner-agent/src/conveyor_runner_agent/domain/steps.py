"""Naming steps and concluding jobs the way GitHub shows them."""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from conveyor_events import Conclusion
from conveyor_workflow import Step


@dataclass(frozen=True)
class StepResult:
    """A finished step: `outcome` before `continue-on-error`, `conclusion` after it."""

    outcome: Conclusion
    conclusion: Conclusion
    outputs: dict[str, str] = field(default_factory=dict)


def step_name(step: Step) -> str:
    """The step's `name`, else `Run <first line of the script>` or `Run <action>`."""
    if step.name:
        return step.name
    if step.run is not None:
        first = next((line for line in step.run.splitlines() if line.strip()), "")
        return f"Run {first.strip()}"
    return f"Run {step.uses}"


def action_names(steps: Sequence[Step]) -> list[str]:
    """Each step's `GITHUB_ACTION` (`github.action`), as GitHub names them: the step's id; else `__run` for a
    script and `__<owner>_<repo>` for an action, with `_2`, `_3`, ... when the same name comes again."""
    seen: Counter[str] = Counter()
    names: list[str] = []
    for step in steps:
        if step.id:
            names.append(step.id)
            continue
        if step.run is not None:
            base = "__run"
        else:
            reference = (step.uses or "").split("@")[0].removeprefix("./").replace("/", "_")
            base = "__" + re.sub(r"[^A-Za-z0-9_-]", "", reference).strip("_")
        seen[base] += 1
        names.append(base if seen[base] == 1 else f"{base}_{seen[base]}")
    return names


def job_conclusion(results: Iterable[StepResult]) -> Conclusion:
    """A job fails when a step's conclusion is failure, is cancelled when one was cancelled, else succeeds."""
    conclusions = {result.conclusion for result in results}
    if Conclusion.FAILURE in conclusions:
        return Conclusion.FAILURE
    if Conclusion.CANCELLED in conclusions:
        return Conclusion.CANCELLED
    return Conclusion.SUCCESS
