"""The llama.cpp runtime, built once so it runs on any x86-64 CPU with AVX2.

llama-cpp-python has no wheel on PyPI: pip compiles it, by default with `-march=native`, and the result
uses whatever the build machine advertises. On a VM that advertises AMX but does not enable its tile
state, that native build dies with a general protection fault at the first decode. Worse, pip caches the
built wheel keyed by the sdist, not by `CMAKE_ARGS`, so a machine that once built natively keeps
reinstalling that wheel whatever flags are set later.

So the runtime is built here with fixed flags (x86-64-v3: AVX, AVX2, BMI2, FMA, F16C; never AVX-512, never
AMX, because a fixed-flag build must also run on AVX2-only CPUs), into a wheel directory of our own keyed by
the version and the flags, with pip's cache off. It is installed only from that directory, and the
installed build's features (`llama_print_system_info()`, read in a child process) are checked afterwards:
a build with the wrong features fails the install loudly.
"""

from __future__ import annotations

import hashlib
import os
import platform
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import platformdirs

from orchestrator.errors import RunError

__all__ = [
    "ENGINE_COMMAND",
    "LLAMA_CPP_VERSION",
    "BuildFeatures",
    "EngineBuildError",
    "Pip",
    "build_flags",
    "ensure_engine",
    "installed_features",
    "parse_features",
    "wheel_dir",
]

LLAMA_CPP_VERSION = "0.3.36"
ENGINE_COMMAND = "orchestrate models engine --rebuild"
"""What a user runs to replace a llama.cpp build that is missing, wrong or crashing."""

_X86_FLAGS = (
    "-DGGML_NATIVE=OFF",
    "-DGGML_AVX=ON",
    "-DGGML_AVX2=ON",
    "-DGGML_BMI2=ON",
    "-DGGML_FMA=ON",
    "-DGGML_F16C=ON",
    "-DGGML_AVX_VNNI=OFF",
    "-DGGML_AVX512=OFF",
    "-DGGML_AVX512_VBMI=OFF",
    "-DGGML_AVX512_VNNI=OFF",
    "-DGGML_AVX512_BF16=OFF",
    "-DGGML_AMX_TILE=OFF",
    "-DGGML_AMX_INT8=OFF",
    "-DGGML_AMX_BF16=OFF",
)
_REQUIRED_X86 = ("AVX", "AVX2", "FMA", "F16C")
_FORBIDDEN_PREFIXES = ("AVX512", "AMX", "AVX_VNNI")
"""Features an AVX2-only CPU lacks (or, for AMX, that a VM may advertise but not enable)."""


class EngineBuildError(RunError):
    """The llama.cpp runtime could not be built, installed, or is not the portable build."""


Pip = Callable[[Sequence[str], dict[str, str], Path], None]
"""Runs `python -m pip ARGS` with ENV, logging to the file; raises EngineBuildError on failure."""


def _is_x86() -> bool:
    return platform.machine().lower() in {"x86_64", "amd64"}


def build_flags() -> tuple[str, ...]:
    """The CMAKE_ARGS of the portable build on this architecture (on non-x86 only -march=native goes)."""
    return _X86_FLAGS if _is_x86() else ("-DGGML_NATIVE=OFF",)


def wheel_dir(flags: Sequence[str] = (), version: str = LLAMA_CPP_VERSION) -> Path:
    """Where the wheel built with these flags lives: keyed by version, flags, Python and machine, so a
    wheel built any other way is never picked up."""
    identity = "\n".join([version, sys.implementation.cache_tag, platform.machine(), *(flags or build_flags())])
    key = hashlib.sha256(identity.encode()).hexdigest()[:16]
    return Path(platformdirs.user_cache_dir("orchestrate")) / "wheels" / f"llama-cpp-python-{version}-{key}"


@dataclass(frozen=True)
class BuildFeatures:
    """What a llama.cpp build uses, as `llama_print_system_info()` reports it."""

    enabled: frozenset[str]
    system_info: str

    def problems(self) -> list[str]:
        """Why this build is not the portable one (empty when it is)."""
        if not _is_x86():
            return []
        missing = [f for f in _REQUIRED_X86 if f not in self.enabled]
        extra = sorted(f for f in self.enabled if f.startswith(_FORBIDDEN_PREFIXES))
        found = [f"uses {', '.join(extra)}"] if extra else []
        return found + ([f"lacks {', '.join(missing)}"] if missing else [])

    def summary(self) -> str:
        shown: list[str] = [f for f in ("AVX", "AVX2", "FMA", "F16C", "BMI2") if f in self.enabled]
        shown += sorted(f for f in self.enabled if f.startswith(_FORBIDDEN_PREFIXES))
        return " ".join(shown) or "no SIMD features"


def parse_features(system_info: str) -> BuildFeatures:
    """`CPU : SSE3 = 1 | AVX = 1 | AVX512 = 0 | ...` -> the features set to 1."""
    enabled = set()
    for field in system_info.replace(":", "|").split("|"):
        name, _, value = field.partition("=")
        if value.strip() == "1":
            enabled.add(name.strip().upper())
    return BuildFeatures(frozenset(enabled), system_info.strip())


_SYSTEM_INFO = "import llama_cpp, sys; sys.stdout.write(llama_cpp.llama_print_system_info().decode())"


def installed_features(python: str = sys.executable, timeout: float = 120) -> BuildFeatures | None:
    """The installed build's features, read in a child process (loading the library must not be able to
    take this process down); None when llama-cpp-python is not installed."""
    proc = subprocess.run([python, "-c", _SYSTEM_INFO], capture_output=True, text=True, timeout=timeout, check=False)
    if proc.returncode != 0:
        if "No module named 'llama_cpp'" in proc.stderr:
            return None
        detail = proc.stderr.strip().splitlines()[-1:] or [f"exit {proc.returncode}"]
        raise EngineBuildError(f"llama-cpp-python is installed but cannot be loaded: {detail[0]}")
    return parse_features(proc.stdout)


def _run_pip(args: Sequence[str], env: dict[str, str], log: Path) -> None:
    with log.open("a") as out:
        out.write(f"$ pip {' '.join(args)}\n")
        out.flush()
        proc = subprocess.run([sys.executable, "-m", "pip", *args], env=env, stdout=out, stderr=out, check=False)
    if proc.returncode != 0:
        tail = log.read_text(errors="replace").strip().splitlines()[-3:]
        raise EngineBuildError(f"pip {args[0]} failed (exit {proc.returncode}): {' / '.join(tail)}; log: {log}")


def _wheel(directory: Path) -> Path | None:
    found = sorted(directory.glob(f"llama_cpp_python-{LLAMA_CPP_VERSION}-*.whl"))
    return found[0] if found else None


def _build_wheel(target: Path, pip: Pip, log: Path) -> Path:
    """Compile the sdist with the portable flags into `target` (pip's cache off: never reuse its wheels)."""
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(dir=target.parent, prefix=".building-"))
    env = {**os.environ, "CMAKE_ARGS": " ".join(build_flags()), "FORCE_CMAKE": "1"}
    try:
        args = ["wheel", "--no-cache-dir", "--no-deps", "--no-binary=llama-cpp-python", "-w", str(staging)]
        pip([*args, f"llama-cpp-python=={LLAMA_CPP_VERSION}"], env, log)
        if _wheel(staging) is None:
            raise EngineBuildError(f"pip wheel produced no llama-cpp-python wheel; log: {log}")
        staging.rename(target)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    wheel = _wheel(target)
    assert wheel is not None
    return wheel


def _install(directory: Path, pip: Pip, log: Path, *, replace: bool) -> None:
    """Install only the wheel from `directory`: `--only-binary` keeps pip from ever building (or taking a
    cached build of) the sdist; replacing an installed build leaves its dependencies as they are."""
    spec = f"llama-cpp-python=={LLAMA_CPP_VERSION}"
    if replace:
        args = ["install", "--no-deps", "--force-reinstall", "--no-index", "--find-links", str(directory), spec]
    else:
        args = ["install", "--only-binary=llama-cpp-python", "--find-links", str(directory), spec]
    pip(args, dict(os.environ), log)


def ensure_engine(
    *,
    rebuild: bool = False,
    pip: Pip = _run_pip,
    features: Callable[[], BuildFeatures | None] = installed_features,
    on_build: Callable[[Path], None] = lambda log: None,
) -> tuple[BuildFeatures, bool]:
    """Make the installed llama-cpp-python the portable build; return its features and whether anything
    changed. An installed portable build is kept unless `rebuild`; a cached portable wheel is reused."""
    current = features()
    if current is not None and not current.problems() and not rebuild:
        return current, False
    directory = wheel_dir()
    log = directory.parent / f"{directory.name}.log"
    log.parent.mkdir(parents=True, exist_ok=True)
    if _wheel(directory) is None:
        on_build(log)
        _build_wheel(directory, pip, log)
    _install(directory, pip, log, replace=current is not None)
    after = features()
    if after is None:
        raise EngineBuildError(f"llama-cpp-python is still not importable after installing it; log: {log}")
    if problems := after.problems():
        raise EngineBuildError(
            f"the installed llama.cpp build is not portable ({'; '.join(problems)}): "
            f"delete {directory} and run `{ENGINE_COMMAND}`"
        )
    return after, True
