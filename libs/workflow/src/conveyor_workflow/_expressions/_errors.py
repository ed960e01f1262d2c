"""The one error type of the expression language."""

from __future__ import annotations


class ExpressionError(ValueError):
    """A bad expression: a syntax error, an unknown name or function, or a failing function call.

    `str(err)` reads like GitHub's own messages:
    `Unrecognized named-value: 'foo'. Located at position 1 within expression: foo`.
    `description` is the part before the location; `position` is 1-based (None when the error
    concerns the whole expression, e.g. its length).
    """

    def __init__(self, description: str, expression: str | None = None, position: int | None = None) -> None:
        self.description = description
        self.expression = expression
        self.position = position
        if position is None or expression is None:
            message = description
        else:
            message = f"{description}. Located at position {position} within expression: {expression}"
        super().__init__(message)
