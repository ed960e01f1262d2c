"""The runner's pure parts: file commands, shells, step names, job contexts and a called job's secrets."""

from conveyor_runner_agent.domain.called_secrets import passed_secrets
from conveyor_runner_agent.domain.commands import (
    AddPath,
    Annotation,
    CommandFailed,
    CommandProcessor,
    Effect,
    GroupEnd,
    GroupStart,
    Mask,
    Output,
    ParsedCommand,
    Processed,
    SaveState,
    SetEnv,
    parse_command,
)
from conveyor_runner_agent.domain.file_commands import FileCommandError, parse_env_file, parse_path_file
from conveyor_runner_agent.domain.log_lines import DEFAULT_JOB_LOG_LIMIT, LineSplitter, LogBudget, safe_text
from conveyor_runner_agent.domain.masking import MASK, Masker, StreamMasker
from conveyor_runner_agent.domain.shells import ShellCommand, shell_command
from conveyor_runner_agent.domain.steps import StepResult, action_names, job_conclusion, step_name

__all__ = [
    "FileCommandError",
    "ShellCommand",
    "StepResult",
    "action_names",
    "job_conclusion",
    "parse_env_file",
    "parse_path_file",
    "passed_secrets",
    "shell_command",
    "step_name",
]
__all__ += [
    "DEFAULT_JOB_LOG_LIMIT",
    "MASK",
    "AddPath",
    "Annotation",
    "CommandFailed",
    "CommandProcessor",
    "Effect",
    "GroupEnd",
    "GroupStart",
    "LineSplitter",
    "LogBudget",
    "Mask",
    "Masker",
    "Output",
    "ParsedCommand",
    "Processed",
    "SaveState",
    "SetEnv",
    "StreamMasker",
    "parse_command",
    "safe_text",
]

from conveyor_runner_agent.domain.actions import (  # noqa: E402
    NODE_RUNTIMES,
    ActionDefinition,
    ActionError,
    ActionInput,
    ActionOutput,
    ActionReference,
    ActionRuns,
    DockerImage,
    LocalAction,
    RemoteAction,
    input_env,
    load_action,
    parse_uses,
    resolve_inputs,
)

__all__ += [
    "NODE_RUNTIMES",
    "ActionDefinition",
    "ActionError",
    "ActionInput",
    "ActionOutput",
    "ActionReference",
    "ActionRuns",
    "DockerImage",
    "LocalAction",
    "RemoteAction",
    "input_env",
    "load_action",
    "parse_uses",
    "resolve_inputs",
]
