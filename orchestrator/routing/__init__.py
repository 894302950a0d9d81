"""Routing: which agent takes a task, offline, calibrated, with reasons (not the graph's edge functions,
which live in graphs/routers.py).

`router` decides (`build_router`, `Router`, `RouteDecision`); `tasks` checks task text and reads task
files; `score`, `text`, `describe` and `weights` compute the probabilities by words; `semantic` by meaning,
over `profiles` (what an agent is matched on), `body` (BM25 over its whole file) and `encoder`
(all-MiniLM-L6-v2 on ONNX Runtime; the files from `sentence_model`); `tiebreak` asks a cheap model when the router
is unsure; `train`, `train_semantic` and `data` fit and load the committed weights.
"""

from orchestrator.routing.router import (
    DEFAULT_THRESHOLD,
    Method,
    RouteDecision,
    RoutedLine,
    Router,
    aroute_lines,
    build_router,
)
from orchestrator.routing.tasks import MAX_TASK_CHARS, check_task, iter_task_lines
from orchestrator.routing.tiebreak import Ask

__all__ = [
    "DEFAULT_THRESHOLD",
    "MAX_TASK_CHARS",
    "Ask",
    "Method",
    "RouteDecision",
    "RoutedLine",
    "Router",
    "aroute_lines",
    "build_router",
    "check_task",
    "iter_task_lines",
]
