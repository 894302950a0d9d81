"""Snapshot files of output that must not change silently (the graph drawing), and the one helper that
compares against them. `UPDATE_SNAPSHOTS=1 pytest ...` rewrites them; review and commit the diff."""

from __future__ import annotations

import difflib
import os
from pathlib import Path

import pytest

__all__ = ["SNAPSHOTS", "assert_snapshot"]

SNAPSHOTS = Path(__file__).resolve().parent


def assert_snapshot(name: str, actual: str) -> None:
    """Fail with a unified diff when `actual` differs from the stored snapshot `name` (or none is stored).

    Never creates a missing snapshot on its own: in CI that would make the test pass vacuously."""
    path = SNAPSHOTS / name
    if os.environ.get("UPDATE_SNAPSHOTS") == "1":
        path.write_bytes(actual.encode("utf-8"))
        return
    if not path.is_file():
        pytest.fail(f"no snapshot {path}: run the test with UPDATE_SNAPSHOTS=1, then review and commit it")
    expected = path.read_bytes().decode("utf-8")
    if actual != expected:
        diff = difflib.unified_diff(expected.splitlines(True), actual.splitlines(True), f"{name} (stored)", "now")
        hint = "if the change is intended, rerun with UPDATE_SNAPSHOTS=1 and commit the snapshot"
        pytest.fail(f"{name} changed ({hint}):\n{''.join(diff)}", pytrace=False)
