"""The chat model and the offline provider: structured output, and Claude names mapped to local roles."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest
from structlog.testing import capture_logs

from orchestrator.errors import UserError
from orchestrator.local.chat import ChatLocalLlama, LocalProvider
from orchestrator.local.engine import LocalModelError
from tests.support.scripted_llama import (
    TASK,
    ScriptedLlama,
    Verdict,
    chat_model,
)


async def test_with_structured_output_works_through_the_forced_path() -> None:
    llama = ScriptedLlama('{"verdict": "approve", "feedback": "fine"}')
    result = await chat_model(llama).with_structured_output(Verdict).ainvoke(TASK)
    assert result == Verdict(verdict="approve", feedback="fine")


@pytest.fixture
def user_models(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, Path]:
    paths = {}
    for role in ("senior", "junior"):
        paths[role] = tmp_path / f"{role}.gguf"
        paths[role].write_bytes(b"GGUF")
        monkeypatch.setenv(f"ORCHESTRATE_LOCAL_{role.upper()}_MODEL", str(paths[role]))
    return paths


@pytest.mark.parametrize(
    ("model", "role"),
    [
        ("opus", "senior"),
        ("sonnet", "junior"),
        ("haiku", "junior"),
        ("claude-opus-4-6", "senior"),
        ("claude-3-5-haiku-latest", "junior"),
        ("senior", "senior"),
        ("Opus", "senior"),
    ],
)
def test_provider_maps_claude_names_to_local_roles(model: str, role: str) -> None:
    assert LocalProvider().role_for(model) == role


def test_provider_aliases_are_overridable() -> None:
    assert LocalProvider(aliases={"sonnet": "senior"}).role_for("claude-sonnet-4-6") == "senior"
    from_env = LocalProvider.from_env({"ORCHESTRATE_LOCAL_SONNET": " Senior ", "ORCHESTRATE_LOCAL_OPUS": ""})
    assert (from_env.role_for("sonnet"), from_env.role_for("opus"), from_env.role_for("haiku")) == (
        "senior",
        "senior",
        "junior",
    )
    with pytest.raises(UserError, match="ORCHESTRATE_LOCAL_HAIKU='big': expected one of senior, junior"):
        LocalProvider.from_env({"ORCHESTRATE_LOCAL_HAIKU": "big"})


def test_unknown_model_names_fall_back_to_the_junior_with_a_warning() -> None:
    with capture_logs() as logs:
        assert LocalProvider().role_for("gpt-4o") == "junior"
    assert logs[0]["event"] == "local_model_fallback"
    assert logs[0]["log_level"] == "warning"


def test_provider_shares_one_engine_per_file(user_models: dict[str, Path]) -> None:
    loaded: list[Path] = []
    lock = threading.Lock()

    def loader(path: Path) -> ScriptedLlama:
        with lock:
            loaded.append(path)
        return ScriptedLlama("ok", "ok")

    provider = LocalProvider(loader=loader)
    sonnet, haiku, opus = (provider.chat_model(m) for m in ("sonnet", "haiku", "opus"))
    assert isinstance(sonnet, ChatLocalLlama)
    assert isinstance(haiku, ChatLocalLlama)
    assert isinstance(opus, ChatLocalLlama)
    assert sonnet.engine is haiku.engine
    assert opus.engine is not sonnet.engine
    sonnet.invoke("a")
    haiku.invoke("b")
    assert loaded == [user_models["junior"].resolve()]
    assert provider.name == "local"
    assert provider.errors == (LocalModelError,)


def test_provider_needs_the_model_file_up_front(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ORCHESTRATE_MODELS_DIR", str(tmp_path))
    monkeypatch.delenv("ORCHESTRATE_LOCAL_JUNIOR_MODEL", raising=False)
    with pytest.raises(Exception, match="orchestrate models pull"):
        LocalProvider().chat_model("haiku")
