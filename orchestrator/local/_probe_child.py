"""The engine probe's child: load one GGUF file with llama.cpp and decode a few tokens.

Run as a script (`python _probe_child.py MODEL`), never imported by orchestrate itself: it imports nothing
of ours, so it starts fast, and a crash here (SIGSEGV, SIGILL) costs only this process. Each stage it
reaches is one JSON line on stdout, flushed at once, so the parent knows how far it got when it dies.
"""

import json
import os
import sys

_PROMPT = (
    "You are a careful engineer. List three checks that make a data pipeline trustworthy, "
    "one per line, each with a short reason, then stop. Checks:\n1."
)
"""Long enough (~40 tokens) for a batched prompt pass, then a few single-token decodes: both kernels run."""


def _stage(name: str, **fields: object) -> None:
    sys.stdout.write(json.dumps({"stage": name, **fields}) + "\n")
    sys.stdout.flush()


def main(model: str) -> None:
    import llama_cpp

    _stage("imported", system_info=llama_cpp.llama_print_system_info().decode(errors="replace"))
    llama = llama_cpp.Llama(model_path=model, n_ctx=256, n_threads=os.cpu_count() or 1, verbose=False)
    _stage("loaded")
    out = llama.create_completion(_PROMPT, max_tokens=4, temperature=0.0)
    usage = out.get("usage", {}) if isinstance(out, dict) else {}
    _stage("decoded", tokens=int(usage.get("completion_tokens", 0)))


if __name__ == "__main__":
    main(sys.argv[1])
