"""GitHub Actions expressions: `${{ github.ref == 'refs/heads/main' && matrix.os != 'windows' }}`.

The grammar, coercions, functions and error messages follow GitHub's documentation
("Evaluate expressions in workflows and actions"). Parsed expressions are cached by text and
compiled to Python closures, so evaluating the same expression again is cheap.
"""

from conveyor_workflow._expressions._api import (
    Status,
    evaluate,
    evaluate_condition,
    interpolate,
    named_values,
    parse_expression,
)
from conveyor_workflow._expressions._errors import ExpressionError
from conveyor_workflow._expressions._parser import Node

__all__ = [
    "ExpressionError",
    "Node",
    "Status",
    "evaluate",
    "evaluate_condition",
    "interpolate",
    "named_values",
    "parse_expression",
]
