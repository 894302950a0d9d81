"""Pick the agent for a task: fast, offline, calibrated, and for any set of agents.

    router = build_router(agents)                      # once per run
    decision = router.route("design a RAG pipeline")   # sync and pure: no model call
    decision = await router.aroute(task, ask=ask)      # may ask the tie-break model when unsure

How (details in the sibling modules): a logistic regression over word and word-pair features (`text`,
`weights`), trained on our labelled ML tasks (`train`), splits work between the bundled
`senior-ml-engineer` and `ml-engineer`; TF-IDF similarity to each agent's `description` (`describe`) lets
a user-added agent win tasks that match it; `score` combines them into calibrated probabilities. With
agents beyond the pair loaded and the routing model installed, tasks are matched by meaning instead
(`semantic`: sentence vectors of each agent's description and body passages, plus the word cues, one
softmax with a "no agent fits" option; the pair is still split by the classifier). Below
`threshold` the router is unsure: `aroute` then puts the question to a cheap model through `ask` (the
graph's route node passes one that goes through the one model-call site, so the call is budgeted,
recorded and replayable), and otherwise, like `route`, sends the task to the safe default (the senior,
who can do junior work; the reverse is what costs). `method` says which path decided. Measured by
`bench/route.py` on held-out data; see the README.
"""

from __future__ import annotations

import functools
import math
from collections.abc import AsyncIterator, Iterable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Literal, NamedTuple, Protocol

from orchestrator.agent_spec import AgentSpec
from orchestrator.errors import UserError
from orchestrator.logs import get_logger
from orchestrator.routing.data import SEMANTIC_FILE, SENIOR, WEIGHTS_FILE, data_file
from orchestrator.routing.score import Scorer, Scores
from orchestrator.routing.sentence_model import sentence_model_ready
from orchestrator.routing.tasks import check_task, iter_task_lines
from orchestrator.routing.tiebreak import Ask, Tiebreak

if TYPE_CHECKING:  # routing by meaning loads ONNX Runtime, tokenizers and safetensors: only when it is used
    from orchestrator.routing.profiles import ProfileCache
    from orchestrator.routing.semantic import SemanticWeights
from orchestrator.routing.weights import Weights, load_weights

__all__ = ["DEFAULT_THRESHOLD", "Method", "RouteDecision", "RoutedLine", "Router", "aroute_lines", "build_router"]

DEFAULT_THRESHOLD = 0.6
"""Below this calibrated confidence the router defers (tie-break model or safe default). 0.6 is where
sending a task to the junior stops paying under the bench's assumptions: Sonnet costs 0.6 of Opus, and a
senior task the junior gets is redone by the senior, so the junior is cheaper only while
0.6 + P(senior) < 1, i.e. P(junior) > 0.6."""
_MAX_CANDIDATES = 4
_TOP = 3
_MIN_CANDIDATE_PROB = 0.05

Method = Literal["classifier", "description", "tiebreak-model", "default", "forced"]
log = get_logger("orchestrator.routing")


class TaskScorer(Protocol):
    by_meaning: bool
    """Whether it matches tasks to agents by sentence vectors (else by words)."""

    def score(self, task: str) -> Scores: ...


@dataclass(frozen=True)
class RouteDecision:
    """Which agent takes the task, how sure we are, and why."""

    agent: str
    confidence: float
    """Calibrated probability that `agent` is the right one, 0..1 (the router's own estimate, also
    for a tie-break choice: the cheap model gives no calibrated score of its own)."""
    reason: str
    """One short human sentence."""
    method: Method
    candidates: tuple[tuple[str, float], ...] = ()
    """The three likeliest agents with their probabilities, best first (what a tie-break chose among)."""


@dataclass(frozen=True)
class Router:
    """Routes tasks among a fixed set of agents; build it once per run with `build_router`."""

    scorer: TaskScorer
    agents: Mapping[str, AgentSpec]
    threshold: float
    default_agent: str
    tiebreak: Tiebreak = field(default_factory=Tiebreak)

    def scores(self, task: str) -> Scores:
        """Every agent's calibrated probability for the task (what `route` decides from)."""
        return self.scorer.score(check_task(task))

    def route(self, task: str) -> RouteDecision:
        """Decide without any model call: the best agent, or the safe default when unsure."""
        scores = self.scores(task)
        return _decided(scores) if self._confident(scores) else self._fallback(scores)

    @property
    def by_meaning(self) -> bool:
        """True when tasks are matched to agents by sentence vectors (the routing model is installed)."""
        return self.scorer.by_meaning

    async def aroute(self, task: str, *, ask: Ask | None = None) -> RouteDecision:
        """Like `route`, but when unsure and given `ask` (the tie-break model), let it choose."""
        scores = self.scores(task)
        if self._confident(scores):
            return _decided(scores)
        if ask is None:
            return self._fallback(scores)
        names = self._candidates(scores)
        candidates = {name: self.agents[name].description for name in names}
        passages = {name: scores.passages[name] for name in names if name in scores.passages}
        result = await self.tiebreak.decide(task, candidates, ask, passages)
        if result.choice is None:
            return self._fallback(scores, result.problem)
        agent = result.choice.agent
        reason = f"Tie-break model: {result.choice.reason}"
        return RouteDecision(agent, scores.probs[agent], reason, "tiebreak-model", _top(scores))

    def _confident(self, scores: Scores) -> bool:
        return scores.probs[scores.best] >= self.threshold

    def _candidates(self, scores: Scores) -> list[str]:
        """The likeliest agents (at least two, at most four) plus the default."""
        ranked = sorted(scores.probs, key=lambda name: -scores.probs[name])
        keep = [n for i, n in enumerate(ranked) if i < 2 or scores.probs[n] >= _MIN_CANDIDATE_PROB]
        keep = keep[:_MAX_CANDIDATES]
        return keep if self.default_agent in keep else [*keep, self.default_agent]

    def _fallback(self, scores: Scores, problem: str = "") -> RouteDecision:
        best, p = scores.best, math.floor(scores.probs[scores.best] * 100) / 100  # 0.596 must not show 0.60
        why = f"; {problem}" if problem else ""
        if scores.none > scores.probs[best]:
            reason = f"No loaded agent fits this task (closest: {best} at {p:.2f}){why}, so the safe default takes it."
        else:
            reason = f"Unsure ({best} at {p:.2f} < {self.threshold:.2f}){why}, so the safe default takes it."
        return RouteDecision(self.default_agent, scores.probs[self.default_agent], reason, "default", _top(scores))


def _top(scores: Scores) -> tuple[tuple[str, float], ...]:
    ranked = sorted(scores.probs.items(), key=lambda item: (-item[1], item[0]))
    return tuple((name, round(p, 4)) for name, p in ranked[:_TOP])


def _decided(scores: Scores) -> RouteDecision:
    best, p = scores.best, scores.probs[scores.best]
    quoted = ", ".join(f'"{cue}"' for cue in scores.cues)
    if scores.method == "classifier":
        reason = f"Cues like {quoted} point to {best}." if quoted else f"The classifier favours {best}."
    elif best in scores.passages:
        reason = f'Matches {best}\'s "{_snippet(scores.passages[best])}".'
    else:
        reason = f"Matches {best}'s description ({quoted})." if quoted else f"Closest description: {best}."
    return RouteDecision(best, p, reason, scores.method, _top(scores))


def _snippet(passage: str, words: int = 10) -> str:
    """The start of the matched passage, for a reason a person reads at a glance."""
    cut = passage.split()
    return " ".join(cut[:words]).rstrip(",;:.") + ("…" if len(cut) > words else "")


@functools.cache
def _shipped_weights() -> Weights:
    return load_weights(data_file(WEIGHTS_FILE))


@functools.cache
def _shipped_semantic_weights() -> SemanticWeights:
    from orchestrator.routing.semantic import SemanticWeights

    return SemanticWeights.from_json(data_file(SEMANTIC_FILE).read_text(encoding="utf-8"))


def build_router(
    agents: Mapping[str, AgentSpec],
    *,
    threshold: float = DEFAULT_THRESHOLD,
    default_agent: str = SENIOR,
    tiebreak_timeout_s: float | None = 30.0,
    weights: Weights | None = None,
    semantic: bool | None = None,
    semantic_weights: SemanticWeights | None = None,
    profile_cache: ProfileCache | None = None,
) -> Router:
    """A router for these agents. `semantic`: match by meaning (True: the routing model must be installed,
    `orchestrate models pull router`; False: by words only; None, the default: by meaning when agents other
    than the bundled pair are loaded and the model is installed, else by words: on the pair alone the word
    classifier measures better, 1.000 vs 0.968 held-out, see the README). `weights`,
    `semantic_weights`: for experiments, default to the committed fits. `profile_cache`: where agents'
    encoded passages are kept (default: the user cache)."""
    if not agents:
        raise UserError("no agents to route to: load at least one agent definition")
    if default_agent not in agents:
        raise UserError(f"default_agent: {default_agent!r} is not a loaded agent ({', '.join(sorted(agents))})")
    if not 0.0 <= threshold <= 1.0:
        raise UserError(f"threshold: {threshold} is not between 0 and 1")
    words = weights or _shipped_weights()
    scorer: TaskScorer
    others = any(name not in words.labels for name in agents)
    if semantic is True or (semantic is None and others and sentence_model_ready()):
        from orchestrator.routing.encoder import default_encoder
        from orchestrator.routing.profiles import ProfileCache
        from orchestrator.routing.semantic import SemanticScorer

        cache = profile_cache or ProfileCache()
        scorer = SemanticScorer(semantic_weights or _shipped_semantic_weights(), words, agents, default_agent,
                                default_encoder(), cache)  # fmt: skip
    else:
        if semantic is None and others:
            log.warning("routing_by_words", why="routing model not installed; run `orchestrate models pull router`")
        scorer = Scorer(words, agents, default_agent)
    return Router(scorer, dict(agents), threshold, default_agent, Tiebreak(tiebreak_timeout_s))


class RoutedLine(NamedTuple):
    """One routed line of a task file (a tuple, so `task, decision, line = routed` works)."""

    task: str
    decision: RouteDecision
    line: int


async def aroute_lines(
    router: Router, lines: Iterable[bytes | str], source: str, *, ask: Ask | None = None
) -> AsyncIterator[RoutedLine]:
    """Route a task file with `Router.aroute` (tie-break model for unsure lines, one at a time)."""
    for number, task in iter_task_lines(lines, source):
        yield RoutedLine(task, await router.aroute(task, ask=ask), number)
