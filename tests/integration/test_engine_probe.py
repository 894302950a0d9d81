"""The crash guard, against real child processes that really die: a stand-in `llama_cpp`
(tests/support/fake_llama) kills itself with SIGSEGV or SIGILL, hangs, or fails, as FAKE_LLAMA says."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from orchestrator.local import probe as probe_module
from orchestrator.local.probe import EngineUnusableError, cached_verdict, ensure_engine_works, probe

FAKE_LLAMA = Path(__file__).resolve().parents[1] / "support" / "fake_llama"
AMX_BUILD = "CPU : SSE3 = 1 | AVX = 1 | AVX2 = 1 | F16C = 1 | FMA = 1 | AVX512 = 1 | AMX_INT8 = 1 | OPENMP = 1 |"


@pytest.fixture
def model(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A model file, the fake llama.cpp on the child's path, and a private probe cache."""
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join([str(FAKE_LLAMA), os.environ.get("PYTHONPATH", "")]))
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    path = tmp_path / "tiny.gguf"
    path.write_bytes(b"GGUF" + bytes(64))
    return path


def test_a_child_killed_by_sigsegv_at_load_is_a_crash_with_the_rebuild_command(
    model: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("FAKE_LLAMA", "segv-on-load")
    monkeypatch.setenv("FAKE_LLAMA_INFO", AMX_BUILD)
    with pytest.raises(EngineUnusableError) as caught:
        ensure_engine_works(model)
    message = str(caught.value)
    assert "crashed with SIGSEGV while loading tiny.gguf" in message
    assert "AMX" in message and "orchestrate models engine --rebuild" in message
    assert "\n" not in message
    verdict = cached_verdict(model)
    assert verdict is not None and verdict.outcome == "crashed" and verdict.signal == "SIGSEGV"


def test_sigill_while_decoding_names_the_features_this_cpu_lacks(model: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FAKE_LLAMA", "ill-on-decode")
    monkeypatch.setenv("FAKE_LLAMA_INFO", AMX_BUILD)
    monkeypatch.setattr(probe_module, "cpu_flags", lambda: frozenset({"avx", "avx2", "fma", "f16c"}))
    with pytest.raises(EngineUnusableError) as caught:
        ensure_engine_works(model)
    assert "crashed with SIGILL while decoding with tiny.gguf" in str(caught.value)
    assert "the build uses AMX_INT8, AVX512, which this CPU does not have" in str(caught.value)


def test_a_cached_verdict_is_reused_and_another_file_is_probed(model: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FAKE_LLAMA", "ok")
    first = ensure_engine_works(model)
    assert first.outcome == "ok" and first.stage == "decoded" and "AVX2 = 1" in first.system_info
    monkeypatch.setenv("FAKE_LLAMA", "segv-on-load")  # would crash, but the verdict for this build is cached
    assert ensure_engine_works(model) == first
    model.write_bytes(b"GGUF" + bytes(65))  # another file: probed afresh
    with pytest.raises(EngineUnusableError, match="SIGSEGV"):
        ensure_engine_works(model)


def test_a_hang_is_killed_and_probed_again_next_time(model: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FAKE_LLAMA", "hang")
    monkeypatch.setenv("ORCHESTRATE_PROBE_TIMEOUT", "1")
    with pytest.raises(EngineUnusableError, match=r"hung while loading tiny.gguf \(no answer in 1 s, killed\)"):
        ensure_engine_works(model)
    assert cached_verdict(model) is None


def test_a_load_error_is_reported_with_the_childs_last_line(model: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FAKE_LLAMA", "fail-on-load")
    verdict = probe(model, timeout=60)
    assert verdict.outcome == "failed" and verdict.stage == "imported"
    assert verdict.detail == f"ValueError: Failed to load model from file: {model}"


def test_a_bad_probe_timeout_names_the_variable(model: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ORCHESTRATE_PROBE_TIMEOUT", "soon")
    with pytest.raises(EngineUnusableError, match="ORCHESTRATE_PROBE_TIMEOUT='soon'"):
        ensure_engine_works(model)


def _orchestrate(*args: str, env: dict[str, str], cwd: Path) -> subprocess.CompletedProcess[str]:
    command = [sys.executable, "-m", "orchestrator", *args]
    return subprocess.run(command, env=env, cwd=cwd, capture_output=True, text=True, timeout=120, check=False)


def test_orchestrate_run_on_a_crashing_engine_fails_in_one_line_and_is_resumable(model: Path, tmp_path: Path) -> None:
    env = {
        **os.environ,
        "FAKE_LLAMA": "segv-on-load",
        "FAKE_LLAMA_INFO": AMX_BUILD,
        "ORCHESTRATE_LOCAL_SENIOR_MODEL": str(model),
        "ORCHESTRATE_LOCAL_JUNIOR_MODEL": str(model),
        "COLUMNS": "200",
    }
    done = _orchestrate("run", "--agent", "senior-ml-engineer", "design a RAG pipeline", env=env, cwd=tmp_path)
    assert done.returncode == 1, done.stderr
    assert "Traceback" not in done.stderr and done.stdout == ""
    errors = [line for line in done.stderr.splitlines() if "crashed with SIGSEGV" in line]
    assert len(errors) == 1 and "orchestrate models engine --rebuild" in errors[0]
    assert "continue with: orchestrate resume" in done.stderr
    runs = json.loads(_orchestrate("runs", "--json", env=env, cwd=tmp_path).stdout)
    assert [r["status"] for r in runs] == ["failed"]
    listing = _orchestrate("models", "list", env=env, cwd=tmp_path)
    assert listing.returncode == 0 and "crashed: killed by SIGSEGV" in " ".join(listing.stdout.split())
