"""The GitHub Actions workflow language: a pure library (no I/O but through injected functions).

Loading and validation (`load_workflow`), expressions (`evaluate`, `interpolate`,
`evaluate_condition`), matrix expansion, trigger filters, the job graph and GITHUB_TOKEN permissions.
"""

from conveyor_workflow._contexts import github_context
from conveyor_workflow._dispatch_inputs import MAX_DISPATCH_INPUTS, DispatchInputs, dispatch_inputs
from conveyor_workflow._expressions import (
    ExpressionError,
    Status,
    evaluate,
    evaluate_condition,
    interpolate,
    named_values,
    parse_expression,
)
from conveyor_workflow._graph import ancestors, find_cycle, job_levels, ready_jobs
from conveyor_workflow._loader import load_workflow
from conveyor_workflow._matrix import (
    MatrixError,
    expand_matrix,
    matrix_job_name,
    matrix_needs_late_evaluation,
    name_uses_matrix,
)
from conveyor_workflow._model import Diagnostic, Job, Step, Workflow, WorkflowError
from conveyor_workflow._permissions import elevated, granted
from conveyor_workflow._schema import as_flag, as_text
from conveyor_workflow._triggers import skip_requested, triggered, validate_filters

__all__ = [
    "MAX_DISPATCH_INPUTS",
    "Diagnostic",
    "DispatchInputs",
    "ExpressionError",
    "Job",
    "MatrixError",
    "Status",
    "Step",
    "Workflow",
    "WorkflowError",
    "ancestors",
    "as_flag",
    "as_text",
    "dispatch_inputs",
    "elevated",
    "evaluate",
    "evaluate_condition",
    "expand_matrix",
    "find_cycle",
    "github_context",
    "granted",
    "interpolate",
    "job_levels",
    "load_workflow",
    "matrix_job_name",
    "matrix_needs_late_evaluation",
    "name_uses_matrix",
    "named_values",
    "parse_expression",
    "ready_jobs",
    "skip_requested",
    "triggered",
    "validate_filters",
]
