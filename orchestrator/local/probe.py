"""The crash guard: before llama.cpp loads a model in this process, prove in a child that it can.

A llama.cpp build that uses instructions the CPU (or the VM around it) cannot execute does not raise: it
kills the process with SIGSEGV or SIGILL, run records and all. So the first load of each (llama build,
model file, CPU) is tried in a child process (`_probe_child.py`: load, decode a few tokens) and the verdict
is cached. A child that dies or hangs becomes `EngineUnusableError`, a one-line run failure that says what
happened, why (the build's CPU features against this CPU's), and the command that rebuilds the engine.
The run itself is saved as failed and resumes once the engine works.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import importlib.util
import json
import os
import platform
import signal
import subprocess
import sys
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Literal

import platformdirs

from orchestrator.errors import RunError
from orchestrator.local.build import ENGINE_COMMAND, parse_features

__all__ = [
    "PROBE_TIMEOUT_ENV",
    "EngineUnusableError",
    "ProbeVerdict",
    "cached_verdict",
    "ensure_engine_works",
    "probe",
]

PROBE_TIMEOUT_ENV = "ORCHESTRATE_PROBE_TIMEOUT"
_DEFAULT_TIMEOUT = 180.0
_CHILD = Path(__file__).with_name("_probe_child.py")

Outcome = Literal["ok", "crashed", "hung", "failed"]
_STAGES = {"": "starting llama.cpp", "imported": "loading", "loaded": "decoding with"}

# llama.cpp's system-info names -> /proc/cpuinfo flags
_CPU_FLAG = {
    "AVX": "avx",
    "AVX2": "avx2",
    "FMA": "fma",
    "F16C": "f16c",
    "BMI2": "bmi2",
    "AVX_VNNI": "avx_vnni",
    "AVX512": "avx512f",
    "AVX512_VBMI": "avx512vbmi",
    "AVX512_VNNI": "avx512_vnni",
    "AVX512_BF16": "avx512_bf16",
    "AMX_INT8": "amx_int8",
}


class EngineUnusableError(RunError):
    """The local llama.cpp build crashed or hung on this machine; the message says why and how to rebuild."""


@dataclass(frozen=True)
class ProbeVerdict:
    """What one probe found (cached as JSON)."""

    outcome: Outcome
    model: str
    stage: str
    """The last stage the child reported: "", "imported", "loaded" or "decoded"."""
    signal: str | None
    system_info: str
    detail: str
    checked_at: str

    def explain(self, cpu_flags: frozenset[str]) -> str:
        """One line: what happened, why, and what to run."""
        doing = _STAGES.get(self.stage, "decoding with")
        name = Path(self.model).name
        if self.outcome == "hung":
            what = f"the local engine hung while {doing} {name} ({self.detail})"
        elif self.outcome == "crashed":
            what = f"the local engine crashed with {self.signal} while {doing} {name}"
        else:
            what = f"the local engine failed while {doing} {name}: {self.detail}"
        return f"{what}; {_why(self.system_info, cpu_flags)}; rebuild it portably with `{ENGINE_COMMAND}`"


def _why(system_info: str, cpu_flags: frozenset[str]) -> str:
    if not system_info:
        return "it died before reporting its CPU features"
    built = parse_features(system_info)
    lacking = sorted(f for f, flag in _CPU_FLAG.items() if f in built.enabled and flag not in cpu_flags)
    if lacking and cpu_flags:
        return f"the build uses {', '.join(lacking)}, which this CPU does not have"
    if "AMX_INT8" in built.enabled:
        return "the build uses AMX, which this CPU advertises but the OS or VM may not enable"
    return f"the build uses {built.summary()}"


def cpu_flags() -> frozenset[str]:
    """This CPU's feature flags as the kernel reports them (empty where /proc/cpuinfo is absent)."""
    try:
        text = Path("/proc/cpuinfo").read_text()
    except OSError:
        return frozenset()
    line = next((ln for ln in text.splitlines() if ln.startswith(("flags", "Features"))), "")
    return frozenset(line.partition(":")[2].split())


def _build_identity() -> list[str]:
    """The installed llama-cpp-python: its version and native libraries (name, size, mtime)."""
    spec = importlib.util.find_spec("llama_cpp")
    if spec is None or not spec.submodule_search_locations:
        return ["absent"]
    root = Path(next(iter(spec.submodule_search_locations)))
    libs = sorted(p for p in root.rglob("*") if p.is_file() and (".so" in p.name or p.suffix in {".dylib", ".dll"}))
    stats = [f"{p.relative_to(root)}:{p.stat().st_size}:{p.stat().st_mtime_ns}" for p in libs]
    return [str(root), *stats, *(["py:" + str((root / "__init__.py").stat().st_mtime_ns)] if not libs else [])]


def _key(model: Path) -> str:
    st = model.stat()
    identity = [*_build_identity(), f"{model.resolve()}:{st.st_size}:{st.st_mtime_ns}", platform.machine()]
    identity.append(" ".join(sorted(cpu_flags())))
    return hashlib.sha256("\n".join(identity).encode()).hexdigest()[:24]


def probe_dir() -> Path:
    return Path(platformdirs.user_cache_dir("orchestrate")) / "probes"


def _timeout() -> float:
    raw = os.environ.get(PROBE_TIMEOUT_ENV, "")
    try:
        value = float(raw) if raw else _DEFAULT_TIMEOUT
    except ValueError:
        value = -1.0
    if not value > 0:
        raise EngineUnusableError(f"{PROBE_TIMEOUT_ENV}={raw!r}: expected a positive number of seconds")
    return value


def _stages(stdout: str) -> tuple[str, str]:
    """(last stage reached, the system info the child reported)."""
    stage, info = "", ""
    for line in stdout.splitlines():
        try:
            record = json.loads(line)
        except ValueError:
            continue
        if isinstance(record, dict) and isinstance(record.get("stage"), str):
            stage = record["stage"]
            info = str(record.get("system_info", info))
    return stage, info


def _run_child(model: Path, timeout: float) -> tuple[int | None, str, str]:
    """(returncode or None on timeout, stdout, stderr); the child's whole process group dies on timeout."""
    with subprocess.Popen(
        [sys.executable, str(_CHILD), str(model)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True,
    ) as child:  # fmt: skip
        try:
            out, err = child.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            os.killpg(child.pid, signal.SIGKILL)
            out, err = child.communicate()
            return None, out, err
    return child.returncode, out, err


def probe(model: Path, *, timeout: float | None = None) -> ProbeVerdict:
    """Load `model` and decode a few tokens in a child process; report how it went."""
    limit = _timeout() if timeout is None else timeout
    code, out, err = _run_child(model, limit)
    stage, info = _stages(out)
    now = dt.datetime.now(dt.UTC).isoformat(timespec="seconds")
    if code is None:
        return ProbeVerdict("hung", str(model), stage, None, info, f"no answer in {limit:g} s, killed", now)
    if code < 0:
        name = signal.Signals(-code).name if -code in signal.Signals._value2member_map_ else f"signal {-code}"
        return ProbeVerdict("crashed", str(model), stage, name, info, f"killed by {name}", now)
    if code != 0 or stage != "decoded":
        last = (err.strip().splitlines() or [f"exit {code}"])[-1]
        return ProbeVerdict("failed", str(model), stage, None, info, last[:300], now)
    return ProbeVerdict("ok", str(model), stage, None, info, "loaded and decoded", now)


def cached_verdict(model: Path) -> ProbeVerdict | None:
    """The cached verdict for this model with the installed build on this CPU, if probed before."""
    try:
        return ProbeVerdict(**json.loads((probe_dir() / f"{_key(model)}.json").read_text()))
    except (OSError, ValueError, TypeError):
        return None


def _store(model: Path, verdict: ProbeVerdict) -> None:
    path = probe_dir() / f"{_key(model)}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(asdict(verdict)))
    tmp.replace(path)


def ensure_engine_works(model: Path) -> ProbeVerdict:
    """Return the ok verdict (cached or fresh) or raise `EngineUnusableError`. Crashes are cached as well
    (the same build on the same CPU crashes again); hangs and failures are probed again next time."""
    verdict = cached_verdict(model)
    if verdict is None:
        verdict = probe(model)
        if verdict.outcome in ("ok", "crashed"):
            _store(model, verdict)
    if verdict.outcome != "ok":
        raise EngineUnusableError(verdict.explain(cpu_flags()))
    return verdict
