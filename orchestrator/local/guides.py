"""Domain guides for the small local senior: what a request's terms mean, and the sections a design or a
debugging answer covers. A 1.5B model does not expand "RAG" on its own (asked directly, it describes a
generic training pipeline), so the adapter reads it the matching guide before it plans.

The guides are data, written for this project (orchestrator/data/guides/*.md, each naming the sources it
draws on): frontmatter with the terms that select it and a one-line expansion, then `## Section` blocks
with a `Cover:` line (its items separated by semicolons), and `## Checkable pieces`, concrete pieces a
junior can write and a command can check. They carry no answers: the model writes every section for the
task at hand. Claude never sees them.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import cache
from importlib import resources
from typing import Literal

from orchestrator._frontmatter import split_frontmatter

__all__ = ["Guide", "Section", "guide_for", "load_guides"]

GuideKind = Literal["design", "debugging"]

_DEBUGGING = re.compile(
    r"\b(debug|diagnos\w*|fix|find the cause|root cause|why does|why is|fails?|failing|broken|crash\w*|error|nan)\b",
    re.IGNORECASE,
)
_DESIGN = re.compile(r"\b(design|architect\w*|plan|propose|strategy|roadmap|how should we|build a|set up)\b", re.I)


@dataclass(frozen=True)
class Section:
    heading: str
    cover: str
    """What the section must address (the guide's `Cover:` line)."""

    @property
    def items(self) -> tuple[str, ...]:
        """The `Cover:` line's items (it separates them with semicolons); one item when it has none."""
        return tuple(item.strip().rstrip(".") for item in self.cover.split(";") if item.strip())


@dataclass(frozen=True)
class Guide:
    name: str
    kind: GuideKind
    title: str
    terms: tuple[str, ...]
    expands: str
    sections: tuple[Section, ...]
    pieces: tuple[str, ...]
    """Concrete, checkable pieces of work this kind of request can hand to a junior."""
    sources: tuple[str, ...]

    def matches(self, task: str) -> int:
        """How many of the guide's terms the task contains (whole words, any case)."""
        return sum(bool(re.search(rf"\b{re.escape(term)}\b", task, re.IGNORECASE)) for term in self.terms)


def _parse(name: str, text: str) -> Guide:
    front = split_frontmatter(text)
    if front.strict_yaml_error is not None:  # bundled data: strict YAML or a loud failure in the tests
        line, problem = front.strict_yaml_error
        raise ValueError(f"guide {name}.md, line {line}: {problem}")
    data = front.data
    blocks = re.split(r"^## +", front.body, flags=re.MULTILINE)[1:]
    sections: list[Section] = []
    pieces: tuple[str, ...] = ()
    for block in blocks:
        heading, _, rest = block.partition("\n")
        if heading.strip() == "Checkable pieces":
            pieces = tuple(line[2:].strip() for line in rest.splitlines() if line.startswith("- "))
            continue
        cover = next(
            (line.removeprefix("Cover:").strip() for line in rest.splitlines() if line.startswith("Cover:")), ""
        )
        sections.append(Section(heading.strip(), cover))
    return Guide(
        name=str(data.get("name", name)), kind=data["kind"], title=str(data["title"]),
        terms=tuple(str(t) for t in data.get("terms") or ()), expands=str(data["expands"]),
        sections=tuple(sections), pieces=pieces, sources=tuple(str(s) for s in data.get("sources") or ()),
    )  # fmt: skip


@cache
def load_guides() -> tuple[Guide, ...]:
    """The bundled guides, specific ones first (the general design and debugging guides have no terms)."""
    folder = resources.files("orchestrator.data").joinpath("guides")
    guides = [_parse(f.name.removesuffix(".md"), f.read_text(encoding="utf-8")) for f in folder.iterdir()
              if f.name.endswith(".md")]  # fmt: skip
    return tuple(sorted(guides, key=lambda g: (not g.terms, g.name)))


def guide_for(task: str) -> Guide | None:
    """The guide for a request: the specific guide whose terms it names most, else the general debugging or
    design guide when it asks for one of those, else None (the adapter works without a guide)."""
    guides = load_guides()
    best = max(guides, key=lambda g: g.matches(task))
    if best.matches(task):
        return best
    kind: GuideKind | None = "debugging" if _DEBUGGING.search(task) else "design" if _DESIGN.search(task) else None
    return next((g for g in guides if not g.terms and g.kind == kind), None)
