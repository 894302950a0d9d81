"""Everything the models read that we write, as one reviewed file: each bundled agent's system prompt and
offered tool schemas (on Anthropic and on any other provider), the review prompt and Verdict schema, and
the revision message. Growth in what every request carries shows up as a diff of
tests/snapshots/prompts.txt, not as a silent cost."""

from __future__ import annotations

import json
from pathlib import Path

from orchestrator.graphs.agent_loop import offered_tools
from orchestrator.graphs.deps import Deps
from orchestrator.graphs.prompts import VERDICT_SCHEMA, agent_system_prompt, review_system_prompt, revision_message
from orchestrator.loader import load_agents
from orchestrator.providers import FixedProvider
from orchestrator.routing import build_router
from orchestrator.tools.registry import ALL_TOOLS
from tests.snapshots import assert_snapshot
from tests.support.scripted_model import ScriptedModel

WORKSPACE = Path("/workspace")


def _json(value: object) -> str:
    return json.dumps(value, indent=1, ensure_ascii=False)


def rendered(tmp_path: Path) -> str:
    agents = load_agents(cwd=tmp_path, home=tmp_path).agents
    parts = []
    for provider in ("anthropic", "local"):
        deps = Deps(agents=agents, provider=FixedProvider(ScriptedModel([]), name=provider),
                    router=build_router(agents, semantic=False), tools=ALL_TOOLS, workspace=WORKSPACE)  # fmt: skip
        for spec in agents.values():
            tools = offered_tools(deps, spec, depth=0 if spec.can_delegate else 1)
            chars = len(json.dumps(tools, separators=(",", ":")))
            parts.append(f"### {spec.name} on {provider}: {len(tools)} tools, {chars:,} characters\n{_json(tools)}")
    for spec in agents.values():
        prompt = agent_system_prompt(spec, WORKSPACE, tools_left=True)
        parts.append(f"### {spec.name}: system prompt, {len(prompt):,} characters\n{prompt}")
    reviewer = agents["senior-ml-engineer"]
    parts.append(f"### review: system prompt\n{review_system_prompt(reviewer)}")
    parts.append(f"### review: tool\n{_json(VERDICT_SCHEMA)}")
    parts.append(f"### revision message\n{revision_message('<feedback>', 2)}")
    return "\n\n".join(parts) + "\n"


def test_what_the_models_read_is_the_reviewed_snapshot(tmp_path: Path) -> None:
    assert_snapshot("prompts.txt", rendered(tmp_path))


def test_the_junior_is_offered_what_routine_implementation_needs_and_no_search_it_cannot_run(tmp_path: Path) -> None:
    agents = load_agents(cwd=tmp_path, home=tmp_path).agents
    names = {}
    for provider in ("anthropic", "local"):
        deps = Deps(agents=agents, provider=FixedProvider(ScriptedModel([]), name=provider),
                    router=build_router(agents, semantic=False), tools=ALL_TOOLS, workspace=WORKSPACE)  # fmt: skip
        names[provider] = {spec.name: [t["name"] for t in offered_tools(deps, spec, 0)] for spec in agents.values()}
    assert names["anthropic"]["ml-engineer"] == names["local"]["ml-engineer"] == [
        "Read", "Edit", "Write", "Glob", "Grep", "Bash"]  # fmt: skip
    assert names["anthropic"]["senior-ml-engineer"][-3:] == ["WebFetch", "web_search", "Task"]
    assert "WebSearch" not in names["local"]["senior-ml-engineer"]
    assert "WebFetch" in names["local"]["senior-ml-engineer"]
