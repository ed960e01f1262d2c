"""Reading what a step wrote to `$GITHUB_OUTPUT`, `$GITHUB_ENV` and `$GITHUB_PATH`."""

from __future__ import annotations


class FileCommandError(ValueError):
    """A file command the runner cannot read: the message names the line and what is wrong."""


def parse_env_file(text: str, *, what: str = "GITHUB_OUTPUT") -> dict[str, str]:
    """`name=value` lines and `name<<DELIMITER` blocks, as GitHub reads `$GITHUB_OUTPUT` and `$GITHUB_ENV`.

    A later value of the same name replaces an earlier one. A block's value is every line up to the line that
    is exactly the delimiter, joined by newlines.
    """
    values: dict[str, str] = {}
    lines = text.split("\n")
    if lines and lines[-1] == "":
        lines.pop()
    index = 0
    while index < len(lines):
        line = lines[index].removesuffix("\r")
        index += 1
        if not line.strip():
            continue
        equals, heredoc = line.find("="), line.find("<<")
        if equals != -1 and (heredoc == -1 or equals < heredoc):
            name, value = line[:equals], line[equals + 1 :]
        elif heredoc != -1:
            name, delimiter = line[:heredoc], line[heredoc + 2 :]
            if not delimiter:
                raise FileCommandError(f"{what} line {index}: a '<<' block needs a delimiter")
            block: list[str] = []
            while index < len(lines) and lines[index].removesuffix("\r") != delimiter:
                block.append(lines[index].removesuffix("\r"))
                index += 1
            if index >= len(lines):
                raise FileCommandError(f"{what}: the delimiter '{delimiter}' of '{name}' is never found")
            index += 1
            value = "\n".join(block)
        else:
            raise FileCommandError(f"{what} line {index}: expected 'name=value' or 'name<<DELIMITER'")
        if not name:
            raise FileCommandError(f"{what} line {index}: the name is empty")
        values[name] = value
    return values


def parse_path_file(text: str) -> list[str]:
    """The directories a step added to `$GITHUB_PATH`, one a line, in the order written."""
    return [line.strip() for line in text.splitlines() if line.strip()]
