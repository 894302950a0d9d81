"""Load agent definition files (Claude Code's subagent format), leniently, with a strict lint on top.

Layers, after pydantic-ai's `AgentSpec.from_file → from_text → from_dict`: only `parse_agent_file` does
I/O; `parse_agent_text` splits the frontmatter; `agent_from_dict` validates with pydantic and normalises.
Real files vary (tools we do not have, model names we do not know, YAML that only looks like YAML), so
the lenient load keeps going and records a `LoadWarning` with file and line; `strict=True` turns every
warning into an `AgentFileError`. What cannot be loaded at all (no frontmatter, no name or description,
unreadable YAML) is always an error: never silently skipped.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from orchestrator._frontmatter import FrontmatterError, split_frontmatter
from orchestrator.agent_spec import AgentSpec
from orchestrator.errors import AgentFileError, UserError
from orchestrator.logs import get_logger
from orchestrator.tools.registry import KNOWN_TOOL_NAMES

__all__ = [
    "AgentSet",
    "LoadWarning",
    "agent_from_dict",
    "agent_mapping",
    "load_agents",
    "parse_agent_file",
    "parse_agent_text",
]

log = get_logger(__name__)

MODEL_ALIASES = ("opus", "sonnet", "haiku", "inherit")
_TOOL_ALIASES = {"Agent": "Task"}  # Claude Code renamed Task to Agent; both mean delegation
RESERVED_NAMES = frozenset({"route", "router", "__start__", "__end__"})
"""Node names of the run graph itself (and the router's calls' name), which no agent may take."""
_UNSAFE_CHARS = frozenset(":|,\\")
_FULL_MODEL_ID = re.compile(r"^claude-[a-z0-9][a-z0-9.\-@]*$")


@dataclass(frozen=True)
class LoadWarning:
    """Something a lenient load tolerated; `--strict` makes it an error."""

    path: Path | None
    line: int
    message: str

    def __str__(self) -> str:
        return f"{self.path or '<text>'}:{self.line}: {self.message}"

    def as_error(self) -> AgentFileError:
        return AgentFileError(self.path or "<text>", self.line, self.message)


@dataclass(frozen=True)
class AgentSet:
    """The agents a run can use, by name, with what loading them tolerated."""

    agents: Mapping[str, AgentSpec]
    warnings: tuple[LoadWarning, ...] = ()

    def __getitem__(self, name: str) -> AgentSpec:
        return self.agents[name]

    def __contains__(self, name: object) -> bool:
        return name in self.agents

    def __iter__(self) -> Any:
        return iter(self.agents.values())

    def __len__(self) -> int:
        return len(self.agents)


def agent_mapping(agents: object, argument: str = "agents") -> dict[str, AgentSpec]:
    """The agents by name, from an AgentSet (what `load_agents` returns) or a mapping of AgentSpecs; anything
    else is a UserError naming the argument."""
    found = agents.agents if isinstance(agents, AgentSet) else agents
    if not isinstance(found, Mapping) or not all(isinstance(a, AgentSpec) for a in found.values()):
        raise UserError(
            f"{argument}: expected what load_agents() returns (or a mapping of name to AgentSpec), "
            f"got {type(agents).__name__}"
        )
    if not found:
        raise UserError(f"{argument}: no agents")
    return dict(found)


class _Frontmatter(BaseModel):
    """The edge: what an agent file's frontmatter must hold."""

    model_config = ConfigDict(extra="allow", str_strip_whitespace=True)

    name: str = Field(min_length=1, pattern=r"^[^\s/]+$")
    description: str = Field(min_length=1)

    @field_validator("name")
    @classmethod
    def _usable_as_a_graph_node(cls, value: str) -> str:
        """Each agent is a node of the run graph: its name must not be one of the graph's own nodes, and
        must not hold the characters LangGraph uses to address nested graphs."""
        if value in RESERVED_NAMES or value.startswith("__"):
            raise ValueError(f"{value!r} is reserved by the orchestration graph; choose another name")
        if bad := next((ch for ch in value if ch in _UNSAFE_CHARS), None):
            raise ValueError(f"{value!r} contains {bad!r}, which the graph cannot use in a node name")
        return value

    tools: str | list[str] | None = None
    model: str | None = None

    @field_validator("description", mode="before")
    @classmethod
    def _scalar_to_text(cls, value: object) -> object:
        return str(value) if isinstance(value, int | float) else value


# --- layer 1: I/O ------------------------------------------------------------------------------------


def parse_agent_file(path: Path) -> tuple[AgentSpec, list[LoadWarning]]:
    """Read one agent file; raise AgentFileError naming file and line if it cannot be loaded."""
    try:
        text = path.read_bytes().decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise AgentFileError(path, 1, f"not UTF-8 text ({exc.reason} at byte {exc.start})") from exc
    except OSError as exc:
        raise AgentFileError(path, 1, f"cannot read: {exc.strerror}") from exc
    return parse_agent_text(text, source=path)


# --- layer 2: text → frontmatter + body --------------------------------------------------------------


def parse_agent_text(text: str, *, source: Path | None = None) -> tuple[AgentSpec, list[LoadWarning]]:
    """Parse the Markdown text of an agent file."""
    try:
        front = split_frontmatter(text)
    except FrontmatterError as exc:
        raise AgentFileError(source or "<text>", exc.line, str(exc)) from exc
    warnings = []
    if front.strict_yaml_error:
        line, problem = front.strict_yaml_error
        note = f"frontmatter is not strict YAML ({problem}); read as flat 'key: value' lines - quote the value"
        warnings.append(LoadWarning(source, line, note))
    spec, more = agent_from_dict(front.data, prompt=front.body, source=source, lines=front.key_lines)
    return spec, warnings + more


# --- layer 3: dict → validated AgentSpec -------------------------------------------------------------


def agent_from_dict(
    data: Mapping[str, Any],
    *,
    prompt: str = "",
    source: Path | None = None,
    lines: Mapping[str, int] | None = None,
) -> tuple[AgentSpec, list[LoadWarning]]:
    """Validate frontmatter data and normalise tools and model."""
    lines = lines or {}
    try:
        front = _Frontmatter.model_validate(dict(data))
    except ValidationError as exc:
        raise _validation_error(exc, source, lines) from exc
    tools, tool_warnings = _normalise_tools(front.tools, source, lines.get("tools", 1))
    model, model_warnings = _normalise_model(front.model, source, lines.get("model", 1))
    extra = {k: v for k, v in data.items() if k not in {"name", "description", "tools", "model"}}
    spec = AgentSpec(front.name, front.description, prompt.strip(), tools, model, source, extra)
    return spec, tool_warnings + model_warnings


def _validation_error(exc: ValidationError, source: Path | None, lines: Mapping[str, int]) -> AgentFileError:
    first = exc.errors()[0]
    field = str(first["loc"][0]) if first["loc"] else "frontmatter"
    problem = "is required" if first["type"] == "missing" else first["msg"].removeprefix("Value error, ").lower()
    return AgentFileError(source or "<text>", lines.get(field, 1), f"'{field}' {problem}")


def _split_tools(raw: str | list[str]) -> list[str]:
    items = raw.split(",") if isinstance(raw, str) else [str(item) for item in raw]
    return [item.strip() for item in items if item.strip()]


def _normalise_tools(
    raw: str | list[str] | None, source: Path | None, line: int
) -> tuple[tuple[str, ...] | None, list[LoadWarning]]:
    """Canonical tool names; tools we do not have are dropped with a warning (never offered)."""
    if raw is None:
        return None, []
    tools: list[str] = []
    warnings: list[LoadWarning] = []
    for name in _split_tools(raw):
        canonical = _TOOL_ALIASES.get(name, name)
        if canonical in KNOWN_TOOL_NAMES:
            tools.extend([canonical] if canonical not in tools else [])
        else:
            warnings.append(LoadWarning(source, line, f"unknown tool {name!r} is not available and is ignored"))
    return tuple(tools), warnings


def _normalise_model(raw: str | None, source: Path | None, line: int) -> tuple[str, list[LoadWarning]]:
    if raw is None or raw in MODEL_ALIASES or _FULL_MODEL_ID.match(raw):
        return raw or "inherit", []
    message = f"unknown model {raw!r}; using 'inherit' (expected opus, sonnet, haiku, inherit or a claude-* id)"
    return "inherit", [LoadWarning(source, line, message)]


# --- discovery -----------------------------------------------------------------------------------------


def bundled_agents_dir() -> Path:
    """Our own agent files, wherever the package is installed."""
    return Path(str(resources.files("orchestrator.agents")))


def search_path(*, agents_dirs: Sequence[Path] = (), cwd: Path | None = None, home: Path | None = None) -> list[Path]:
    """Directories in increasing precedence, as Claude Code: bundled < ~/.claude < ./.claude < --agents-dir."""
    cwd = cwd or Path.cwd()
    home = home or Path.home()
    return [bundled_agents_dir(), home / ".claude" / "agents", cwd / ".claude" / "agents", *agents_dirs]


def load_agents(
    agents_dirs: Sequence[Path | str] = (),
    *,
    strict: bool = False,
    cwd: Path | None = None,
    home: Path | None = None,
) -> AgentSet:
    """Load every agent on the search path; later directories override earlier ones by name."""
    dirs = [Path(d) for d in agents_dirs]
    for directory in dirs:
        if not directory.is_dir():
            raise AgentFileError(directory, 0, "--agents-dir is not a directory")
    agents: dict[str, AgentSpec] = {}
    warnings: list[LoadWarning] = []
    for directory in search_path(agents_dirs=dirs, cwd=cwd, home=home):
        found, found_warnings = _load_dir(directory)
        agents.update(found)
        warnings.extend(found_warnings)
    if strict and warnings:
        raise AgentLintError(warnings)
    _log_warnings(warnings)
    return AgentSet(agents, tuple(warnings))


def _load_dir(directory: Path) -> tuple[dict[str, AgentSpec], list[LoadWarning]]:
    agents: dict[str, AgentSpec] = {}
    warnings: list[LoadWarning] = []
    for path in sorted(directory.rglob("*.md")) if directory.is_dir() else []:
        spec, spec_warnings = parse_agent_file(path)
        if spec.name in agents:
            raise AgentFileError(path, 2, f"agent name {spec.name!r} is also defined in {agents[spec.name].source}")
        agents[spec.name] = spec
        warnings.extend(spec_warnings)
    return agents, warnings


def _log_warnings(warnings: Iterable[LoadWarning]) -> None:
    for warning in dict.fromkeys(warnings):  # each distinct warning once
        log.warning("agent_file_warning", file=str(warning.path), line=warning.line, message=warning.message)


class AgentLintError(AgentFileError):
    """`--strict`: every tolerated oddity, as errors naming file and line."""

    def __init__(self, warnings: Sequence[LoadWarning]) -> None:
        first = warnings[0]
        super().__init__(first.path or "<text>", first.line, first.message)
        self.warnings = tuple(warnings)

    def __str__(self) -> str:
        return "\n".join(str(w) for w in self.warnings)
