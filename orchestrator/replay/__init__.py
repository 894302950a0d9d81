"""Replay a recorded run through the current graph, answering every model call from the recording.

`recording` holds the recorded answers and finds the first divergence, `provider` serves them as chat
models, `run` rebuilds the orchestrator of the recorded run and replays it, `report` says what happened.
"""

from orchestrator.replay.provider import ReplayChatModel, ReplayProvider, recorded_provider_name
from orchestrator.replay.recording import Divergence, Recording, ReplayDivergence
from orchestrator.replay.report import ReplayReport
from orchestrator.replay.run import areplay

__all__ = [
    "Divergence",
    "Recording",
    "ReplayChatModel",
    "ReplayDivergence",
    "ReplayProvider",
    "ReplayReport",
    "areplay",
    "recorded_provider_name",
]
