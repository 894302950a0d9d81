"""File paths named in free text: the files a brief asks to be made, the files a report claims.

One reading for everyone: the review's evidence check (graphs/evidence.py) and the local model's progress
facts (local/steps.py) both see `create src/a.py`, `./src/a.py` and `/workspace/src/a.py` as the same file.
"""

from __future__ import annotations

import re
from pathlib import Path

__all__ = ["in_workspace", "mentioned_paths", "requested_files", "same_file"]

_EXTENSIONS = "py|txt|md|json|jsonl|ya?ml|toml|csv|tsv|ipynb|sh|cfg|ini|sql|parquet"
_PATH = re.compile(rf"(?<![\w/.-])((?:\./|/)?(?:[\w.-]+/)*[\w-][\w.-]*\.(?:{_EXTENSIONS}))\b")
_MAKE = re.compile(r"\b(?:create|write|add|save|generate|produce|implement)\b(?:[^.\n]|\.(?=\S)){0,200}", re.IGNORECASE)


def in_workspace(path: str, workspace: Path | None = None) -> str:
    """`path` as the workspace-relative form tools report (absolute paths outside it stay absolute)."""
    path = path.removeprefix("./")
    if workspace is None or not path.startswith("/"):
        return path
    for root in (workspace, workspace.resolve()):
        if Path(path).is_relative_to(root):
            return Path(path).relative_to(root).as_posix()
    return path


def mentioned_paths(text: str, workspace: Path | None = None) -> list[str]:
    """File paths that look like paths in free text, in order, without duplicates."""
    return list(dict.fromkeys(in_workspace(m.group(1), workspace) for m in _PATH.finditer(text)))


def requested_files(request: str, workspace: Path | None = None) -> list[str]:
    """Files a request asks to be made ("create x.py", "write the config to conf/a.yaml"), not mere inputs."""
    found = (path for clause in _MAKE.findall(request) for path in mentioned_paths(clause, workspace))
    return list(dict.fromkeys(found))


def same_file(called: object, wanted: str) -> bool:
    """Whether a tool's path argument names the wanted file when the workspace is not known (either may
    be absolute, or start with ./)."""
    a, b = str(called).removeprefix("./"), wanted.removeprefix("./")
    return a == b or a.endswith("/" + b) or b.endswith("/" + a)
