"""Each conversation's KV cache kept across switches on one model: `KvStates`.

A llama context holds one evaluated prompt, and llama.cpp reuses it only for the next prompt's common
prefix. One model serves several conversations in turn: the senior's turn, then its review of the junior
(another conversation), then the senior's answer, whose ~1,000-token prompt it would evaluate again from
the start (~30 s on two cores). So when the conversation changes, the context's state is saved under the
conversation it belonged to, and the next conversation's saved state, if any, is restored; llama.cpp then
evaluates only what is new.

A conversation is named by its opening (the system prompt and first user message). The saved state is the
KV cells and the token ids, without the per-token logits llama-cpp-python copies too (`save_state` holds
n_batch x n_vocab floats, ~300 MB): every restored prompt re-evaluates at least its last token, so those
logits are never read (`Llama.generate` after `load_state`).
"""

from __future__ import annotations

import hashlib
from collections import OrderedDict
from collections.abc import Mapping, Sequence
from typing import Any, Protocol

__all__ = ["KvStates", "StatefulLlama", "conversation_key"]


class StatefulLlama(Protocol):
    """What `llama_cpp.Llama` offers for saving and restoring its context."""

    n_tokens: int

    def save_state(self) -> Any: ...
    def load_state(self, state: Any) -> None: ...
    def n_vocab(self) -> int: ...


def conversation_key(messages: Sequence[Mapping[str, Any]]) -> str:
    """The conversation a chat request continues: a digest of its first two messages."""
    digest = hashlib.sha256()
    for message in messages[:2]:
        digest.update(f"{message.get('role')}\0{message.get('content')}\0".encode())
    return digest.hexdigest()


class KvStates:
    """Saved contexts of the conversations a model served before the current one, the `capacity` most
    recent ones."""

    def __init__(self, capacity: int = 2) -> None:
        self.capacity = capacity
        self._saved: OrderedDict[str, Any] = OrderedDict()
        self._current: str | None = None
        self.restored = 0

    def switch_to(self, llama: StatefulLlama, key: str) -> None:
        """Before a request of conversation `key`: save the context's conversation if it is another one,
        and restore `key`'s saved context, if there is one."""
        if key == self._current:
            return
        state = self._saved.pop(key, None)
        if self._current is not None and llama.n_tokens > 0:
            self._save(llama, self._current)
        self._current = key
        if state is not None:
            llama.load_state(state)
            self.restored += 1

    def _save(self, llama: StatefulLlama, key: str) -> None:
        import numpy as np  # llama-cpp-python's own dependency: only a real model gets here

        state = llama.save_state()
        state.scores = np.zeros((1, llama.n_vocab()), dtype=np.single)  # see the module docstring
        self._saved[key] = state
        self._saved.move_to_end(key)
        while len(self._saved) > self.capacity:
            self._saved.popitem(last=False)
