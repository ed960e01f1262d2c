"""The shells a `run:` step may name, as GitHub runs them on Linux."""

from __future__ import annotations

import shlex
from dataclasses import dataclass

UNSPECIFIED = "bash -e {0}"
"""A step that names no shell (nor does `defaults.run`) runs with this: `shell: bash` adds `--noprofile --norc`
and `pipefail`, so `false | true` passes here and fails there, as on GitHub."""
UNSPECIFIED_IN_CONTAINER = "sh -e {0}"
"""In a job container a step that names no shell runs with `sh`, as on GitHub: an image may have no bash."""
_POWERSHELL_BEFORE = "$ErrorActionPreference = 'stop'\n"
_POWERSHELL_AFTER = "\nif ((Test-Path -LiteralPath variable:\\LASTEXITCODE)) { exit $LASTEXITCODE }\n"
_TEMPLATES = {
    "bash": ("bash --noprofile --norc -eo pipefail {0}", ".sh"),
    "sh": ("sh -e {0}", ".sh"),
    "python": ("python {0}", ".py"),
    "pwsh": ("pwsh -command \". '{0}'\"", ".ps1"),
    "powershell": ("pwsh -command \". '{0}'\"", ".ps1"),
}


@dataclass(frozen=True)
class ShellCommand:
    """The argv to run (with the script's path in place of `{0}`) and the script file's extension."""

    template: str
    extension: str

    def argv(self, script: str) -> list[str]:
        return [part.replace("{0}", script) for part in shlex.split(self.template)]

    def script(self, text: str) -> str:
        """The file's text for the step's script: PowerShell's stops at the first error and exits with the last
        native command's exit code, as GitHub wraps it; the others' is the script as written."""
        if self.extension == ".ps1":
            return f"{_POWERSHELL_BEFORE}{text}{_POWERSHELL_AFTER}"
        return text


def shell_command(shell: str | None, *, in_container: bool = False) -> ShellCommand:
    """The command for `shell:` (`UNSPECIFIED`, or `UNSPECIFIED_IN_CONTAINER` in a job container, when unset);
    any other value is a template that must contain `{0}`."""
    if shell is None:
        return ShellCommand(UNSPECIFIED_IN_CONTAINER if in_container else UNSPECIFIED, ".sh")
    name = shell.strip()
    if name in _TEMPLATES:
        template, extension = _TEMPLATES[name]
        return ShellCommand(template, extension)
    if "{0}" not in name:
        raise ValueError(f"shell '{name}' is not one of {', '.join(_TEMPLATES)} and has no '{{0}}' for the script")
    return ShellCommand(name, "")
