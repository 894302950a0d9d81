"""The default checkpointer: LangGraph's SQLite saver, called on the event loop itself.

`AsyncSqliteSaver` sends every statement through aiosqlite's thread: a checkpoint is four hops (cursor,
execute, commit, close) and the hops cost more than the write. In WAL mode with `synchronous=NORMAL` a
write is tens of microseconds, so `LoopSqliteSaver` runs the synchronous `SqliteSaver` methods directly
from its async ones (measured per checkpoint and its writes: 0.35 ms through aiosqlite, 0.09 ms here).
No method awaits while it holds the connection, so the loop's own calls never contend for its lock.

The cost of the trade: a write that waits for another process's write lock blocks the loop for that
wait (`busy_timeout`); the run store's transactions are short and never span an await.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from langchain_core.runnables import RunnableConfig
from langgraph.checkpoint.base import ChannelVersions, Checkpoint, CheckpointMetadata, CheckpointTuple
from langgraph.checkpoint.sqlite import SqliteSaver

from orchestrator.sqlite_open import connect

__all__ = ["LoopSqliteSaver", "sqlite_checkpointer"]


class LoopSqliteSaver(SqliteSaver):
    """`SqliteSaver` with async methods that run on the caller's loop, without a thread hop."""

    async def aget_tuple(self, config: RunnableConfig) -> CheckpointTuple | None:
        return self.get_tuple(config)

    async def alist(
        self,
        config: RunnableConfig | None,
        *,
        filter: dict[str, Any] | None = None,
        before: RunnableConfig | None = None,
        limit: int | None = None,
    ) -> AsyncIterator[CheckpointTuple]:
        for item in self.list(config, filter=filter, before=before, limit=limit):
            yield item

    async def aput(
        self,
        config: RunnableConfig,
        checkpoint: Checkpoint,
        metadata: CheckpointMetadata,
        new_versions: ChannelVersions,
    ) -> RunnableConfig:
        return self.put(config, checkpoint, metadata, new_versions)

    async def aput_writes(
        self, config: RunnableConfig, writes: Sequence[tuple[str, Any]], task_id: str, task_path: str = ""
    ) -> None:
        self.put_writes(config, writes, task_id, task_path)

    async def adelete_thread(self, thread_id: str) -> None:
        self.delete_thread(thread_id)

    async def aget_delta_channel_history(self, *, config: RunnableConfig, channels: Sequence[str]) -> Mapping[str, Any]:
        return self.get_delta_channel_history(config=config, channels=channels)


@contextmanager
def sqlite_checkpointer(path: Path) -> Iterator[LoopSqliteSaver]:
    """A saver on its own connection to the run database (WAL + NORMAL: durable at a commit per step; a
    crash loses at most the last steps, never consistency), closed on exit."""
    conn = connect(path)
    try:
        saver = LoopSqliteSaver(conn)
        saver.setup()
        yield saver
    finally:
        conn.close()
