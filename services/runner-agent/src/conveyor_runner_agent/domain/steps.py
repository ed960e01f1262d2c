"""Naming steps and concluding jobs the way GitHub shows them."""

from __future__ import annotations

from collections.abc import Iterable
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


def job_conclusion(results: Iterable[StepResult]) -> Conclusion:
    """A job fails when a step's conclusion is failure, is cancelled when one was cancelled, else succeeds."""
    conclusions = {result.conclusion for result in results}
    if Conclusion.FAILURE in conclusions:
        return Conclusion.FAILURE
    if Conclusion.CANCELLED in conclusions:
        return Conclusion.CANCELLED
    return Conclusion.SUCCESS
