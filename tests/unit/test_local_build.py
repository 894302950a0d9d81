"""The portable llama.cpp build: fixed flags, a wheel directory keyed by them, pip's cache never consulted,
and an installed build with the wrong CPU features refused. pip itself is injected (a compile takes
minutes); `make test` runs the real build through `orchestrate models engine`."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import pytest

from orchestrator.local import build
from orchestrator.local.build import BuildFeatures, EngineBuildError, ensure_engine, parse_features, wheel_dir

PORTABLE = "CPU : SSE3 = 1 | SSSE3 = 1 | AVX = 1 | AVX2 = 1 | F16C = 1 | FMA = 1 | BMI2 = 1 | OPENMP = 1 | REPACK = 1 |"
NATIVE = (
    "CPU : SSE3 = 1 | SSSE3 = 1 | AVX = 1 | AVX_VNNI = 1 | AVX2 = 1 | F16C = 1 | FMA = 1 | BMI2 = 1 | AVX512 = 1 | "
    "AVX512_VBMI = 1 | AVX512_VNNI = 1 | AVX512_BF16 = 1 | AMX_INT8 = 1 | OPENMP = 1 | REPACK = 1 |"
)


@pytest.fixture(autouse=True)
def _cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    monkeypatch.setattr(build, "_is_x86", lambda: True)


class Pip:
    """Records pip invocations; `wheel` drops a wheel file where -w points, as pip would."""

    def __init__(self) -> None:
        self.calls: list[tuple[list[str], dict[str, str]]] = []

    def __call__(self, args: Sequence[str], env: dict[str, str], log: Path) -> None:
        self.calls.append((list(args), env))
        if args[0] == "wheel":
            out = Path(args[args.index("-w") + 1])
            (out / f"llama_cpp_python-{build.LLAMA_CPP_VERSION}-py3-none-linux_x86_64.whl").write_bytes(b"PK")

    @property
    def commands(self) -> list[str]:
        return [args[0] for args, _ in self.calls]


class Installed:
    """What `llama_print_system_info()` says before and after each install."""

    def __init__(self, *infos: str | None) -> None:
        self.infos = list(infos)

    def __call__(self) -> BuildFeatures | None:
        info = self.infos.pop(0) if len(self.infos) > 1 else self.infos[0]
        return None if info is None else parse_features(info)


def test_features_are_read_from_the_system_info_line() -> None:
    portable, native = parse_features(PORTABLE), parse_features(NATIVE)
    assert {"AVX2", "FMA", "F16C", "BMI2"} <= portable.enabled and portable.problems() == []
    assert native.problems() == ["uses AMX_INT8, AVX512, AVX512_BF16, AVX512_VBMI, AVX512_VNNI, AVX_VNNI"]
    assert parse_features("CPU : SSE3 = 1 | AVX = 1 | AVX2 = 0 |").problems() == ["lacks AVX2, FMA, F16C"]


def test_the_wheel_directory_is_keyed_by_the_flags() -> None:
    assert wheel_dir() == wheel_dir(build.build_flags())
    assert wheel_dir(["-DGGML_NATIVE=ON"]) != wheel_dir()
    assert wheel_dir().name.startswith(f"llama-cpp-python-{build.LLAMA_CPP_VERSION}-")


def test_a_fresh_install_compiles_with_portable_flags_and_no_pip_cache() -> None:
    pip = Pip()
    features, changed = ensure_engine(pip=pip, features=Installed(None, PORTABLE))
    assert changed and features.problems() == []
    assert pip.commands == ["wheel", "install"]
    (wheel_args, wheel_env), (install_args, _) = pip.calls
    assert "--no-cache-dir" in wheel_args and wheel_args[-1] == f"llama-cpp-python=={build.LLAMA_CPP_VERSION}"
    flags = wheel_env["CMAKE_ARGS"].split()
    assert "-DGGML_NATIVE=OFF" in flags and "-DGGML_AVX2=ON" in flags
    assert {"-DGGML_AVX512=OFF", "-DGGML_AMX_TILE=OFF", "-DGGML_AMX_INT8=OFF", "-DGGML_AMX_BF16=OFF"} <= set(flags)
    assert "--only-binary=llama-cpp-python" in install_args  # pip may never build (or take a cached build of) the sdist
    assert install_args[install_args.index("--find-links") + 1] == str(wheel_dir())


def test_a_native_build_is_replaced_from_the_cached_portable_wheel() -> None:
    Pip()(["wheel", "-w", str(_made(wheel_dir()))], {}, Path("log"))  # a portable wheel built earlier
    pip = Pip()
    _, changed = ensure_engine(pip=pip, features=Installed(NATIVE, PORTABLE))
    assert changed and pip.commands == ["install"]
    args = pip.calls[0][0]
    assert {"--force-reinstall", "--no-deps", "--no-index"} <= set(args)


def test_a_portable_build_is_kept_unless_rebuild_is_asked() -> None:
    pip = Pip()
    assert ensure_engine(pip=pip, features=Installed(PORTABLE)) == (parse_features(PORTABLE), False)
    assert pip.calls == []
    ensure_engine(rebuild=True, pip=pip, features=Installed(PORTABLE))
    assert pip.commands == ["wheel", "install"]


def test_an_install_that_still_has_the_wrong_features_fails_loudly() -> None:
    with pytest.raises(EngineBuildError) as caught:
        ensure_engine(pip=Pip(), features=Installed(None, NATIVE))
    assert "not portable (uses AMX_INT8, AVX512" in str(caught.value)
    assert "orchestrate models engine --rebuild" in str(caught.value)


def test_a_failed_compile_leaves_no_wheel_directory_behind(tmp_path: Path) -> None:
    def failing(args: Sequence[str], env: dict[str, str], log: Path) -> None:
        raise EngineBuildError("pip wheel failed (exit 1): cmake not found")

    with pytest.raises(EngineBuildError, match="cmake not found"):
        ensure_engine(pip=failing, features=Installed(None))
    assert not wheel_dir().exists()
    assert [p.name for p in wheel_dir().parent.iterdir() if p.name.startswith(".building")] == []


def _made(directory: Path) -> Path:
    directory.mkdir(parents=True)
    return directory
