"""A stand-in `llama_cpp` for the engine probe's tests: it behaves as FAKE_LLAMA says.

Put this folder on PYTHONPATH of a child process. FAKE_LLAMA is one of: ok, segv-on-load, ill-on-decode,
hang, fail-on-load; FAKE_LLAMA_INFO is what `llama_print_system_info()` reports.
"""

import os
import signal
import time

_PORTABLE = "CPU : SSE3 = 1 | SSSE3 = 1 | AVX = 1 | AVX2 = 1 | F16C = 1 | FMA = 1 | BMI2 = 1 | OPENMP = 1 |"


def _mode() -> str:
    return os.environ.get("FAKE_LLAMA", "ok")


def llama_print_system_info() -> bytes:
    return os.environ.get("FAKE_LLAMA_INFO", _PORTABLE).encode()


class Llama:
    def __init__(self, model_path: str, **_: object) -> None:
        if _mode() == "segv-on-load":
            os.kill(os.getpid(), signal.SIGSEGV)
        if _mode() == "fail-on-load":
            raise ValueError(f"Failed to load model from file: {model_path}")
        if _mode() == "hang":
            time.sleep(3600)

    def create_completion(self, prompt: str, **_: object) -> dict[str, object]:
        if _mode() == "ill-on-decode":
            os.kill(os.getpid(), signal.SIGILL)
        return {"choices": [{"text": " ok"}], "usage": {"completion_tokens": 2}}
