"""Draw the many-agent routing split from the agent corpus (tests/data/agent-corpus), once, reproducibly.

    python scripts/draw_routing_agents.py   # writes tests/data/routing/corpus_split.json

Agents are keyed by frontmatter `name` (both collections' copies of a name fall on the same side). The
held-out side is the issue's mix (18 distinct voltagent agents beside our two) plus a random draw; the
training side is a random draw from the rest, one agent per role across both sides (see `role`).
No held-out name is ever used to train or tune.

The training side grew once: 80 agents first, then `N_EXTRA` more (`draw_more`) that are also unlike
every agent already drawn by what they do (the cosine of their descriptions' sentence vectors, so it
needs `orchestrate models pull router`), since a user's unseen agent is what the held-out side stands for.
"""

from __future__ import annotations

import json
import random
import re
from collections import defaultdict
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
CORPUS = ROOT / "tests/data/agent-corpus"
OUT = ROOT / "tests/data/routing/corpus_split.json"
SEED = 19
N_TRAIN = 80
N_HELDOUT = 50
N_EXTRA = 40
EXTRA_SEED = 6
MAX_COSINE_HELDOUT = 0.6
MAX_COSINE_TRAIN = 0.72
OURS = {"senior-ml-engineer", "ml-engineer"}
MIX = [
    "data-engineer", "mlops-engineer", "database-optimizer", "kubernetes-specialist", "security-auditor",
    "api-designer", "frontend-developer", "mobile-developer", "technical-writer", "ui-designer",
    "product-manager", "legal-advisor", "seo-specialist", "game-developer", "payment-integration",
    "network-engineer", "qa-expert", "terraform-engineer",
]  # fmt: skip
_TITLE = re.compile(r"-(pro|expert|developer|specialist|engineer|administrator|admin)$")
_NAME = re.compile(r"^name:\s*[\"']?([^\"'\n]+)", re.M)


def corpus_files() -> dict[str, list[str]]:
    files: dict[str, list[str]] = defaultdict(list)
    for path in sorted(CORPUS.rglob("*.md")):
        match = _NAME.search(path.read_text(encoding="utf-8"))
        if path.name != "README.md" and match:
            files[match.group(1).strip()].append(path.relative_to(ROOT).as_posix())
    return files


def main() -> None:
    files = corpus_files()
    names = sorted(set(files) - OURS)
    rng = random.Random(SEED)
    rest = [n for n in names if n not in MIX]
    rng.shuffle(rest)
    roles = {role(n, files) for n in MIX}
    heldout, train = list(MIX), []
    for name in rest:
        side = heldout if len(heldout) < N_HELDOUT else train
        if len(train) == N_TRAIN:
            break
        if role(name, files) not in roles:
            roles.add(role(name, files))
            side.append(name)
    split = {
        "seed": SEED,
        "mix": MIX,
        "heldout": {n: voltagent_first(files[n]) for n in MIX + sorted(heldout[len(MIX) :])},
        "train": {n: voltagent_first(files[n]) for n in sorted(train)},
    }
    split["train"] = dict(sorted({**split["train"], **draw_more(files, split, roles)}.items()))
    OUT.write_text(json.dumps(split, indent=1) + "\n", encoding="utf-8")
    counts = f"{len(split['train'])} training agents, {len(heldout)} held-out ({len(MIX)} in the mix)"
    print(f"{OUT.relative_to(ROOT)}: {counts}")


def draw_more(files: dict[str, list[str]], split: dict[str, Any], roles: set[str]) -> dict[str, str]:
    """`N_EXTRA` more training agents: a random draw of the names left whose role is not taken, whose file
    is not a copy of a drawn one (wshobson's plugins share files: `x__debugger.md`), and whose description
    is within `MAX_COSINE_*` of no held-out and no training agent."""
    from orchestrator.loader import parse_agent_file
    from orchestrator.routing.encoder import default_encoder

    encoder = default_encoder()
    drawn = [*split["heldout"], *split["train"]]
    taken = {_file_stem(p) for side in ("heldout", "train") for p in split[side].values()}

    def vectors(paths: list[str]) -> Any:
        return encoder.encode([parse_agent_file(ROOT / p)[0].description[:1000] for p in paths])

    heldout, train = vectors(list(split["heldout"].values())), vectors(list(split["train"].values()))
    left = sorted(n for n in set(files) - OURS - set(drawn) if not any(n in d or d in n for d in drawn))
    paths = [voltagent_first(files[n]) for n in left]
    left_vectors = vectors(paths)
    near_heldout, near_train = (left_vectors @ heldout.T).max(1), (left_vectors @ train.T).max(1)
    order = sorted(zip(near_heldout, near_train, left, paths, strict=True))
    unlike = [(n, p) for h, t, n, p in order if h < MAX_COSINE_HELDOUT and t < MAX_COSINE_TRAIN]
    unlike = [(n, p) for n, p in unlike if _file_stem(p) not in taken]
    random.Random(EXTRA_SEED).shuffle(unlike)
    more: dict[str, str] = {}
    for name, path in unlike:
        if len(more) == N_EXTRA:
            break
        if role(name, files) not in roles and _file_stem(path) not in taken:
            roles.add(role(name, files))
            taken.add(_file_stem(path))
            more[name] = path
    return more


def _file_stem(path: str) -> str:
    return path.rsplit("__", 1)[-1].removesuffix(".md")


def role(name: str, files: dict[str, list[str]]) -> str:
    """wshobson prefixes its plugin: `backend-development-security-auditor` and `codebase-cleanup-code-reviewer`
    are a security-auditor and a code-reviewer. One agent per role in the whole split, so no held-out role
    trains the router and no two loaded agents are the same job."""
    titled = {_TITLE.sub("", n) for n in files}  # fastapi-pro and fastapi-developer, database-admin(istrator)
    parts = _TITLE.sub("", name).split("-")
    suffixes = ("-".join(parts[i:]) for i in range(len(parts) - 1, 0, -1))
    return next((suffix for suffix in suffixes if suffix in titled), "-".join(parts))


def voltagent_first(paths: list[str]) -> str:
    """One file per name: the voltagent copy where there are two (the mix is drawn from voltagent)."""
    return sorted(paths, key=lambda p: "voltagent" not in p)[0]


if __name__ == "__main__":
    main()
