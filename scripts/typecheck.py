"""mypy --strict over the package as it installs, with graphs/, tools/ and agents/ inside `orchestrator`.

The top-level folders graphs/, tools/ and agents/ are the subpackages orchestrator.graphs, .tools and
.agents through setuptools' `package-dir` mapping (pyproject.toml). Python follows that mapping (the
editable install's finder, or the wheel's layout), mypy does not: it only knows folders. So this lays the
sources out as the wheel does, in a temporary tree of hard links (copies where links cannot be made),
runs mypy there, and maps the paths in its report back to the files of this checkout.

    python scripts/typecheck.py        # what `make lint` runs; exit status is mypy's
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = "orchestrator"


def package_dirs() -> dict[str, Path]:
    """Import package -> source folder, for the package and every mapped subpackage."""
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]
    mapped = {name: ROOT / folder for name, folder in config.get("package-dir", {}).items()}
    return {PACKAGE: ROOT / PACKAGE, **mapped}


def _link(source: Path, target: Path) -> None:
    target.parent.mkdir(parents=True, exist_ok=True)
    try:
        os.link(source, target)
    except OSError:
        shutil.copy2(source, target)


def lay_out(tree: Path) -> dict[str, str]:
    """Link every .py (and py.typed) into `tree` at its import path; return installed -> checkout paths."""
    back: dict[str, str] = {}
    dirs = package_dirs()
    for name, folder in sorted(dirs.items(), key=lambda item: item[0].count(".")):
        inside = [other for other in dirs.values() if other != folder and other.is_relative_to(folder)]
        for source in sorted(folder.rglob("*")):
            if source.suffix not in {".py", ".typed"} or any(source.is_relative_to(o) for o in inside):
                continue
            installed = Path(*name.split("."), source.relative_to(folder))
            _link(source, tree / installed)
            back[str(installed)] = str(source.relative_to(ROOT))
    return back


def main() -> int:
    with tempfile.TemporaryDirectory(prefix="orchestrate-typecheck-") as scratch:
        tree = Path(scratch)
        back = lay_out(tree)
        command = [sys.executable, "-m", "mypy", "--config-file", str(ROOT / "pyproject.toml")]
        command += ["--cache-dir", str(ROOT / ".mypy_cache"), "-p", PACKAGE]
        done = subprocess.run(command, cwd=tree, capture_output=True, text=True, check=False)
    for line in (done.stdout + done.stderr).splitlines():
        path, sep, rest = line.partition(":")
        sys.stdout.write(f"{back.get(path, path)}{sep}{rest}\n")
    return done.returncode


if __name__ == "__main__":
    raise SystemExit(main())
