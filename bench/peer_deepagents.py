"""The deepagents side of bench/peer.py, run by the peer's own venv: our two agent files' prompts as a deep
agent (the senior as the main agent, the junior as its one subagent), files written to WORKSPACE on disk,
the model behind ANTHROPIC_BASE_URL. Prints the final answer."""

from __future__ import annotations

import sys
from pathlib import Path

from deepagents import create_deep_agent
from deepagents.backends import FilesystemBackend
from langchain_anthropic import ChatAnthropic


def _agent_file(path: Path) -> tuple[str, str]:
    """(description, prompt) of a Claude Code agent file (frontmatter, then the Markdown body)."""
    _, head, body = path.read_text().split("---", 2)
    description = next(line.split(":", 1)[1].strip() for line in head.splitlines() if line.startswith("description:"))
    return description, body.strip()


def main() -> None:
    agents, workspace, task = Path(sys.argv[1]), Path(sys.argv[2]), sys.argv[3]
    _, senior = _agent_file(agents / "senior-ml-engineer.md")
    description, junior = _agent_file(agents / "ml-engineer.md")
    model = ChatAnthropic(model_name="claude-sonnet-4-6", max_tokens=8192, timeout=120, stop=None)
    agent = create_deep_agent(
        model=model,
        system_prompt=senior,
        subagents=[{"name": "ml-engineer", "description": description, "system_prompt": junior}],
        backend=FilesystemBackend(root_dir=workspace, virtual_mode=True),
    )
    result = agent.invoke({"messages": [{"role": "user", "content": task}]})
    print(result["messages"][-1].content)


if __name__ == "__main__":
    main()
