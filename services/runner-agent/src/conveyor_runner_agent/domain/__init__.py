"""The runner's pure parts: file commands, shells, step names and job contexts."""

from conveyor_runner_agent.domain.file_commands import FileCommandError, parse_env_file, parse_path_file
from conveyor_runner_agent.domain.shells import ShellCommand, shell_command
from conveyor_runner_agent.domain.steps import StepResult, job_conclusion, step_name

__all__ = [
    "FileCommandError",
    "ShellCommand",
    "StepResult",
    "job_conclusion",
    "parse_env_file",
    "parse_path_file",
    "shell_command",
    "step_name",
]
