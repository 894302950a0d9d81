"""KvStates: a model that serves several conversations in turn keeps each one's context. (A restored
context only saves time: llama.cpp still matches the new prompt against its tokens; that the answers are
the same with it is checked on a real model in tests/integration/test_local_models.py.)"""

from __future__ import annotations

from typing import Any

from orchestrator.local.kv_states import KvStates, conversation_key


class Context:
    """A llama context reduced to what KvStates touches: the evaluated tokens, saved and restored."""

    def __init__(self) -> None:
        self.n_tokens = 0
        self.tokens: list[str] = []
        self.loaded: list[list[str]] = []

    def evaluate(self, tokens: list[str]) -> None:
        self.tokens, self.n_tokens = list(tokens), len(tokens)

    def save_state(self) -> Any:
        return type("State", (), {"tokens": list(self.tokens), "scores": None})()

    def load_state(self, state: Any) -> None:
        self.evaluate(state.tokens)
        self.loaded.append(state.tokens)

    def n_vocab(self) -> int:
        return 8


SENIOR = conversation_key([{"role": "system", "content": "senior"}, {"role": "user", "content": "design"}])
REVIEW = conversation_key([{"role": "system", "content": "reviewer"}, {"role": "user", "content": "brief"}])
OTHER = conversation_key([{"role": "system", "content": "other"}, {"role": "user", "content": "task"}])


def test_the_conversation_is_named_by_its_opening_only() -> None:
    opening = [{"role": "system", "content": "senior"}, {"role": "user", "content": "design"}]
    assert conversation_key([*opening, {"role": "assistant", "content": "more"}]) == SENIOR
    assert SENIOR != REVIEW


def test_switching_back_restores_the_conversation_and_drops_its_logits() -> None:
    context, states = Context(), KvStates()
    states.switch_to(context, SENIOR)
    context.evaluate(["sys", "design", "turn"])
    states.switch_to(context, REVIEW)  # the senior's context is saved, nothing to restore for the review
    assert context.loaded == []
    context.evaluate(["reviewer", "brief"])
    states.switch_to(context, SENIOR)
    assert context.loaded == [["sys", "design", "turn"]]
    assert states.restored == 1
    states.switch_to(context, SENIOR)  # same conversation: llama.cpp's own prefix reuse, nothing restored
    assert states.restored == 1


def test_only_the_most_recent_conversations_are_kept() -> None:
    context, states = Context(), KvStates(capacity=1)
    for key, tokens in ((SENIOR, ["s"]), (REVIEW, ["r"]), (OTHER, ["o"])):
        states.switch_to(context, key)
        context.evaluate(tokens)
    states.switch_to(context, SENIOR)  # saved first, evicted by the review's
    assert context.loaded == []
    context.evaluate(["s"])
    states.switch_to(context, OTHER)
    assert context.loaded == [["o"]]
