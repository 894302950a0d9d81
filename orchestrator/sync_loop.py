"""The one event loop behind the synchronous API (`Orchestrator.run`, `batch`).

The model SDKs keep async HTTP connection pools per process, bound to the event loop that opened them; a
fresh `asyncio.run` per call would hand the next call a pool of a closed loop ("Connection error", "Event
loop is closed"). So every synchronous call runs on this one long-lived loop, in a daemon thread, which
also lets the sync API work where a loop is already running (a notebook).
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Coroutine
from typing import Any, TypeVar

__all__ = ["run_sync"]

T = TypeVar("T")

_lock = threading.Lock()
_loop: asyncio.AbstractEventLoop | None = None


def _the_loop() -> asyncio.AbstractEventLoop:
    global _loop
    with _lock:
        if _loop is None:
            _loop = asyncio.new_event_loop()
            threading.Thread(target=_loop.run_forever, name="orchestrate-sync-loop", daemon=True).start()
        return _loop


def run_sync(coroutine: Coroutine[Any, Any, T]) -> T:
    """Run `coroutine` on the sync API's loop and wait for it; Ctrl-C cancels it (the run then records
    itself as interrupted) before the KeyboardInterrupt goes on."""
    future = asyncio.run_coroutine_threadsafe(coroutine, _the_loop())
    try:
        return future.result()
    except KeyboardInterrupt:
        future.cancel()
        raise
