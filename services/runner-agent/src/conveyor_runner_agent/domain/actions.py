"""What the runner knows about actions: `uses:` references, `action.yml` metadata and an action's inputs.

Metadata is read as GitHub's runner reads it (its `action_yaml.json` schema): only `runs` is required; `name`,
`description`, `inputs` and `outputs` are typed when present; other top-level keys (`author`, `branding`, …) are
accepted and ignored apart from `author`. Scalars follow YAML 1.2 as in a workflow (`on`, `yes` stay strings).
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import yaml
from conveyor_workflow import Diagnostic, Step


class ActionError(Exception):
    """An action that cannot be used; `.diagnostics` locates each problem of a bad metadata file."""

    def __init__(self, message: str, diagnostics: list[Diagnostic] | None = None) -> None:
        super().__init__(message)
        self.diagnostics = diagnostics or []


# -- references ------------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class LocalAction:
    """`./path/to/dir`: a directory of the workspace (`path` without the leading `./`; `.` for the root)."""

    path: str


@dataclass(frozen=True, slots=True)
class RemoteAction:
    """`owner/repo[/path]@ref`: `path` is '' for an action at the repository root."""

    owner: str
    repo: str
    path: str
    ref: str

    @property
    def repository(self) -> str:
        return f"{self.owner}/{self.repo}"

    def __str__(self) -> str:
        path = f"/{self.path}" if self.path else ""
        return f"{self.owner}/{self.repo}{path}@{self.ref}"


@dataclass(frozen=True, slots=True)
class DockerImage:
    """`docker://image:tag`: an image run as the action."""

    image: str


ActionReference = LocalAction | RemoteAction | DockerImage

_NAME = re.compile(r"[A-Za-z0-9_.-]+\Z")
_BAD_REF = re.compile(r"[\s~^:?*\[\\\x00-\x1f\x7f]|\.\.|@\{|//|^[-/]|/$|\.lock$|^\.|/\.")
_FORMAT = "expected './path', '{owner}/{repo}[/path]@ref' or 'docker://image'"


def parse_uses(uses: str) -> ActionReference:
    """The action a step's `uses:` names; `ActionError` says what is wrong with a malformed one."""
    text = uses.strip()
    if text.startswith("docker://"):
        image = text.removeprefix("docker://")
        if not image or any(c.isspace() for c in image):
            raise _bad(uses, "the image after 'docker://' is missing or contains spaces")
        return DockerImage(image)
    if text.startswith("./") or text == ".":
        return LocalAction(text[2:].strip("/") or ".")
    if "@" not in text:
        raise _bad(uses, "the @ref is missing (pin a tag, branch or commit SHA, e.g. 'actions/checkout@v4')")
    name, _, ref = text.rpartition("@")
    if not ref:
        raise _bad(uses, "the ref after '@' is empty")
    if "@" in name:
        raise _bad(uses, "it contains more than one '@'")
    if _BAD_REF.search(ref):
        raise _bad(uses, f"'{ref}' is not a valid git ref")
    owner, _, rest = name.partition("/")
    repo, _, path = rest.partition("/")
    for part, what in ((owner, "owner"), (repo, "repository")):
        if not part:
            raise _bad(uses, f"the {what} is empty")
        if not _NAME.match(part) or part in {".", ".."} or part.startswith("-"):
            raise _bad(uses, f"the {what} '{part}' may only contain letters, digits, '-', '_' and '.'")
    segments = path.split("/") if path else []
    if any(segment in {"", ".", ".."} for segment in segments):
        raise _bad(uses, f"the path '{path}' has an empty, '.' or '..' segment")
    return RemoteAction(owner, repo, path, ref)


def _bad(uses: str, detail: str) -> ActionError:
    return ActionError(f"Invalid action reference '{uses}': {detail}; {_FORMAT}")


# -- metadata --------------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ActionInput:
    """One entry of `inputs`; `default` may hold `${{ }}` expressions, evaluated when the action runs."""

    description: str | None = None
    required: bool = False
    default: str | None = None
    deprecation_message: str | None = None


@dataclass(frozen=True, slots=True)
class ActionOutput:
    """One entry of `outputs`; `value` (composite actions) is an expression over the action's `steps`."""

    description: str | None = None
    value: str | None = None


@dataclass(frozen=True, slots=True)
class ActionRuns:
    """`runs`; `using` is lower-cased: `composite`, `node12`…`node24` or `docker`. Unused fields keep defaults."""

    using: str
    steps: tuple[Step, ...] = ()
    main: str | None = None
    pre: str | None = None
    post: str | None = None
    pre_if: str = "always()"
    post_if: str = "always()"
    image: str | None = None
    env: dict[str, str] = field(default_factory=dict)
    args: tuple[str, ...] = ()
    entrypoint: str | None = None
    pre_entrypoint: str | None = None
    post_entrypoint: str | None = None

    @property
    def is_node(self) -> bool:
        return self.using in NODE_RUNTIMES


@dataclass(frozen=True, slots=True)
class ActionDefinition:
    """A loaded `action.yml`; `name` and `description` are '' when the file leaves them out."""

    runs: ActionRuns
    name: str = ""
    description: str = ""
    author: str | None = None
    inputs: dict[str, ActionInput] = field(default_factory=dict)
    outputs: dict[str, ActionOutput] = field(default_factory=dict)


NODE_RUNTIMES = ("node12", "node16", "node20", "node24")
_RUNS_KEYS = {
    "composite": {"using", "steps"},
    "node": {"using", "main", "pre", "pre-if", "post", "post-if"},
    "docker": {"using", "image", "entrypoint", "args", "env", "pre-entrypoint", "pre-if", "post-entrypoint", "post-if"},
}
_STEP_KEYS = {"id", "name", "if", "env", "continue-on-error"}
_RUN_STEP_KEYS = _STEP_KEYS | {"run", "shell", "working-directory"}
_USES_STEP_KEYS = _STEP_KEYS | {"uses", "with"}
_ID = re.compile(r"[A-Za-z_][A-Za-z0-9_-]{0,98}\Z")
MAX_METADATA_BYTES = 1024 * 1024


def load_action(text: str, path: str) -> ActionDefinition:
    """Read `action.yml` text; `ActionError` lists every problem found, each at `path (Line: l, Col: c)`."""
    reader = _Reader(path)
    root = reader.compose(text)
    definition = reader.definition(root) if root is not None else None
    if reader.problems or definition is None:
        problems = sorted(reader.problems, key=lambda problem: (problem.line, problem.column))
        raise ActionError("\n".join(map(str, problems)), problems)
    return definition


# -- inputs ----------------------------------------------------------------------------------------------------


def resolve_inputs(
    definition: ActionDefinition, given: Mapping[str, str], evaluate_default: Callable[[str], str]
) -> tuple[dict[str, str], list[str]]:
    """The inputs an action runs with, and the warnings GitHub's runner gives about them.

    As on GitHub: names match case-insensitively; every declared input is present (the given value, else its
    default through `evaluate_default`, else ''); an unknown given input and a deprecated one only warn; a
    `required` input left out is not checked at all (the runner ignores `required`; an action using the
    toolkit's `getInput(name, {required: true})` fails by itself). Docker actions also accept `entryPoint`, `args`.
    """
    inputs = dict(given)
    lowered = {name.lower() for name in given}
    warnings: list[str] = []
    declared = {name.lower(): spec for name, spec in definition.inputs.items()}
    for name in given:
        spec = declared.get(name.lower())
        if spec is not None and spec.deprecation_message is not None:
            warnings.append(f"Input '{name}' has been deprecated with message: {spec.deprecation_message}")
    valid = ["entryPoint", "args"] if definition.runs.using == "docker" else []
    for name, spec in definition.inputs.items():
        valid.append(name)
        if name.lower() not in lowered:
            inputs[name] = evaluate_default(spec.default) if spec.default is not None else ""
    unexpected = [name for name in given if name.lower() not in {v.lower() for v in valid}]
    if unexpected:
        names, choices = "', '".join(unexpected), "', '".join(valid)
        warnings.append(f"Unexpected input(s) '{names}', valid inputs are ['{choices}']")
    return inputs, warnings


def input_env(inputs: Mapping[str, str]) -> dict[str, str]:
    """`INPUT_<NAME>` variables: the name upper-cased with spaces as `_` (hyphens stay: `INPUT_MY-INPUT`)."""
    return {f"INPUT_{name.replace(' ', '_').upper()}": value for name, value in inputs.items()}


def as_text(value: Any) -> str:
    """A YAML scalar as GitHub turns it into a string (`true`, `1`, `1.5`, '' for null)."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and math.isfinite(value) and value.is_integer() and abs(value) < 1e15:
        return str(int(value))
    return str(value)


# -- reading the YAML ------------------------------------------------------------------------------------------

_TAG = "tag:yaml.org,2002:"
_KIND_TAGS = {yaml.ScalarNode: _TAG + "str", yaml.SequenceNode: _TAG + "seq", yaml.MappingNode: _TAG + "map"}
_BASE_LOADER: type[yaml.SafeLoader] = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
_NULLS = frozenset({"", "~", "null", "Null", "NULL"})
_BOOLS = {"true": True, "True": True, "TRUE": True, "false": False, "False": False, "FALSE": False}
_NUMBER = re.compile(r"[-+]?([0-9]+|(\.[0-9]+|[0-9]+\.[0-9]*)([eE][-+]?[0-9]+)?|[0-9]+[eE][-+]?[0-9]+)\Z")


class _Composer(_BASE_LOADER):  # type: ignore[valid-type,misc]
    """Composes nodes only: scalars are resolved by `_scalar` (YAML 1.2 core), not by PyYAML's YAML 1.1."""

    def resolve(self, kind: type[yaml.Node], value: Any, implicit: Any) -> str:
        return _KIND_TAGS[kind]


def _scalar(node: yaml.ScalarNode) -> str | int | float | bool | None:
    text: str = node.value
    if node.style:  # quoted or block: always a string (libyaml marks plain as "", PyYAML as None)
        return text
    if text in _NULLS:
        return None
    if text in _BOOLS:
        return _BOOLS[text]
    if _NUMBER.match(text):
        return int(text) if text.lstrip("+-").isdigit() else float(text)
    return text


class _Reader:
    """Typed reads of composed nodes; a read that fails records a `Diagnostic` and returns None."""

    def __init__(self, path: str) -> None:
        self.path = path
        self.problems: list[Diagnostic] = []

    def error(self, node: yaml.Node | yaml.Mark | None, message: str) -> None:
        mark = node.start_mark if isinstance(node, yaml.Node) else node
        line, column = (mark.line + 1, mark.column + 1) if mark is not None else (1, 1)
        self.problems.append(Diagnostic(path=self.path, line=line, column=column, message=message))

    def compose(self, text: str) -> yaml.Node | None:
        if len(text.encode("utf-8", "surrogatepass")) > MAX_METADATA_BYTES:
            self.error(None, f"The action metadata is larger than {MAX_METADATA_BYTES} bytes.")
            return None
        loader = _Composer(text)
        try:
            node: yaml.Node | None = loader.get_single_node()
        except yaml.MarkedYAMLError as exc:
            problem = exc.problem or "invalid YAML"
            context = f" {exc.context}" if exc.context else ""
            self.error(exc.problem_mark or exc.context_mark, f"Invalid YAML: {problem}{context}")
            return None
        except yaml.YAMLError as exc:
            self.error(None, f"Invalid YAML: {str(exc).splitlines()[0]}")
            return None
        except RecursionError:
            self.error(None, "The action metadata nests too deeply.")
            return None
        finally:
            loader.dispose()
        if node is None or (isinstance(node, yaml.ScalarNode) and _scalar(node) is None):
            self.error(None, "The action metadata is empty; it needs at least 'runs'.")
            return None
        return node

    def unexpected(self, node: yaml.Node) -> None:
        if isinstance(node, yaml.MappingNode):
            self.error(node, "A mapping was not expected")
        elif isinstance(node, yaml.SequenceNode):
            self.error(node, "A sequence was not expected")
        else:
            self.error(node, f"Unexpected value '{node.value}'")

    def pairs(self, node: yaml.Node, what: str) -> list[tuple[str, yaml.Node]]:
        """A mapping's entries (null reads as empty); a non-text or repeated key is reported and skipped."""
        if isinstance(node, yaml.ScalarNode) and _scalar(node) is None:
            return []
        if not isinstance(node, yaml.MappingNode):
            self.error(node, f"Expected a mapping for '{what}'")
            return []
        result: list[tuple[str, yaml.Node]] = []
        seen: set[str] = set()
        for key, value in node.value:
            if not isinstance(key, yaml.ScalarNode) or not key.value:
                self.unexpected(key)
            elif key.value in seen:
                self.error(key, f"'{key.value}' is already defined")
            else:
                seen.add(key.value)
                result.append((key.value, value))
        return result

    def fields(self, node: yaml.Node, allowed: set[str] | None, what: str) -> dict[str, yaml.Node]:
        """A mapping with known keys (`allowed`; None accepts any); unknown ones are `Unexpected value`."""
        found: dict[str, yaml.Node] = {}
        for name, value in self.pairs(node, what):
            if allowed is not None and name not in allowed:
                key = next(k for k, _ in node.value if isinstance(k, yaml.ScalarNode) and k.value == name)
                self.error(key, f"Unexpected value '{name}'")
            else:
                found[name] = value
        return found

    def text(self, node: yaml.Node | None, *, non_empty: bool = False) -> str | None:
        if node is None:
            return None
        if not isinstance(node, yaml.ScalarNode):
            self.unexpected(node)
            return None
        text = as_text(_scalar(node))
        if non_empty and not text:
            self.error(node, "Unexpected value ''")
            return None
        return text

    def text_map(self, node: yaml.Node, what: str) -> dict[str, str]:
        return {name: text for name, value in self.pairs(node, what) if (text := self.text(value)) is not None}

    def definition(self, root: yaml.Node) -> ActionDefinition | None:
        if not isinstance(root, yaml.MappingNode):
            self.error(root, "The action metadata must be a mapping with at least 'runs'")
            return None
        found = self.fields(root, None, "action")
        inputs = {name: self.input(value) for name, value in self.pairs(found.get("inputs", _NULL), "inputs")}
        outputs = {name: self.output(value) for name, value in self.pairs(found.get("outputs", _NULL), "outputs")}
        if "runs" not in found:
            self.error(root, "Top level 'runs:' section is required")
            return None
        runs = self.runs(found["runs"])
        if runs is None:
            return None
        return ActionDefinition(
            runs=runs,
            name=self.text(found.get("name")) or "",
            description=self.text(found.get("description")) or "",
            author=self.text(found.get("author")),
            inputs=inputs,
            outputs=outputs,
        )

    def input(self, node: yaml.Node) -> ActionInput:
        # Like GitHub's runner: `default` and `deprecationMessage` match case-insensitively, other keys are free.
        found = {name.lower(): value for name, value in self.fields(node, None, "input").items()}
        required = found.get("required")
        flag = _scalar(required) if isinstance(required, yaml.ScalarNode) else None
        return ActionInput(
            description=self.text(found.get("description")),
            required=flag is True or (isinstance(flag, str) and flag.lower() == "true"),
            default=self.text(found.get("default")),
            deprecation_message=self.text(found.get("deprecationmessage")),
        )

    def output(self, node: yaml.Node) -> ActionOutput:
        found = self.fields(node, {"description", "value"}, "output")
        return ActionOutput(description=self.text(found.get("description")), value=self.text(found.get("value")))

    def runs(self, node: yaml.Node) -> ActionRuns | None:
        if not isinstance(node, yaml.MappingNode):
            self.error(node, "Expected a mapping for 'runs'")
            return None
        using_node = dict(self.pairs(node, "runs")).get("using")
        using = (self.text(using_node, non_empty=True) or "").lower() if using_node else None
        if using_node is None or using is None:
            self.error(node, "Required property is missing: using")
            return None
        kind = "node" if using in NODE_RUNTIMES else using
        if kind not in _RUNS_KEYS:
            supported = "', '".join(("docker", *NODE_RUNTIMES))
            self.error(using_node, f"'using: {using_node.value}' is not supported, use '{supported}' or 'composite'")
            return None
        found = self.fields(node, _RUNS_KEYS[kind], "runs")
        texts = {name: self.text(value, non_empty=True) for name, value in found.items() if name not in _STRUCTURED}
        pre_if, post_if = texts.get("pre-if") or "always()", texts.get("post-if") or "always()"
        if kind == "composite":
            if "steps" not in found:
                self.error(node, "Required property is missing: steps")
            return ActionRuns(using, steps=self.steps(found.get("steps", _NULL)))
        if kind == "node":
            if "main" not in found:
                self.error(node, "Required property is missing: main")
            return ActionRuns(
                using,
                main=texts.get("main"),
                pre=texts.get("pre"),
                post=texts.get("post"),
                pre_if=pre_if,
                post_if=post_if,
            )
        if "image" not in found:
            self.error(node, "Required property is missing: image")
        return ActionRuns(
            using,
            image=texts.get("image"),
            env=self.text_map(found.get("env", _NULL), "env"),
            args=self.args(found.get("args")),
            entrypoint=texts.get("entrypoint"),
            pre_entrypoint=texts.get("pre-entrypoint"),
            post_entrypoint=texts.get("post-entrypoint"),
            pre_if=pre_if,
            post_if=post_if,
        )

    def args(self, node: yaml.Node | None) -> tuple[str, ...]:
        if node is None or (isinstance(node, yaml.ScalarNode) and _scalar(node) is None):
            return ()
        if not isinstance(node, yaml.SequenceNode):
            self.error(node, "Expected a sequence for 'args'")
            return ()
        return tuple(text for item in node.value if (text := self.text(item)) is not None)

    def steps(self, node: yaml.Node) -> tuple[Step, ...]:
        if isinstance(node, yaml.ScalarNode) and _scalar(node) is None:
            return ()
        if not isinstance(node, yaml.SequenceNode):
            self.error(node, "Expected a sequence for 'steps'")
            return ()
        seen: set[str] = set()
        return tuple(step for item in node.value if (step := self.step(item, seen)) is not None)

    def step(self, node: yaml.Node, seen: set[str]) -> Step | None:
        if not isinstance(node, yaml.MappingNode):
            self.error(node, "Expected a mapping for a step")
            return None
        names = {key.value for key, _ in node.value if isinstance(key, yaml.ScalarNode)}
        if "run" in names and "uses" in names:
            self.error(node, "A step may have either 'run' or 'uses', not both")
            return None
        if "run" not in names and "uses" not in names:
            self.error(node, "Required property is missing: run or uses")
            return None
        is_run = "run" in names
        found = self.fields(node, _RUN_STEP_KEYS if is_run else _USES_STEP_KEYS, "step")
        step: dict[str, Any] = {}
        if is_run and "shell" not in found:
            self.error(node, "Required property is missing: shell")
        if "id" in found and (step_id := self.text(found["id"], non_empty=True)) is not None:
            self.identifier(found["id"], step_id, seen)
            step["id"] = step_id
        for key, name in _STEP_TEXTS:
            if key in found:
                step[name] = self.text(found[key], non_empty=key in {"run", "shell", "uses"})
        if "if" in found and step.get("if_") is not None:
            step["if_"] = step["if_"].strip() or None
        if step.get("uses") is not None:
            try:
                parse_uses(step["uses"])
            except ActionError as error:
                self.error(found["uses"], str(error))
        if "with" in found:
            step["with_"] = self.text_map(found["with"], "with")
        if "env" in found:
            step["env"] = self.text_map(found["env"], "env")
        if "continue-on-error" in found:
            step["continue_on_error"] = self.flag(found["continue-on-error"])
        return Step.model_validate(step)

    def identifier(self, node: yaml.Node, step_id: str, seen: set[str]) -> None:
        if not _ID.match(step_id):
            self.error(
                node,
                f"The identifier '{step_id}' is invalid. IDs may only contain alphanumeric characters, '_', "
                "and '-'. IDs must start with a letter or '_' and must be less than 100 characters.",
            )
        elif step_id in seen:
            self.error(node, f"The identifier '{step_id}' may not be used more than once within the same scope.")
        seen.add(step_id)

    def flag(self, node: yaml.Node) -> bool | str:
        """`continue-on-error`: a boolean or an expression."""
        value = _scalar(node) if isinstance(node, yaml.ScalarNode) else None
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and "${{" in value:
            return value
        self.unexpected(node)
        return False


_NULL = yaml.ScalarNode(_TAG + "str", "")
_STRUCTURED = {"steps", "env", "args"}
_STEP_TEXTS = (
    ("name", "name"),
    ("if", "if_"),
    ("run", "run"),
    ("shell", "shell"),
    ("uses", "uses"),
    ("working-directory", "working_directory"),
)
