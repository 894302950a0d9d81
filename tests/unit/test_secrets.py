"""Secrets are masked by value, chosen by their variable's name and length."""

from __future__ import annotations

import pytest

from orchestrator.secrets import mask_secrets, secret_values


@pytest.mark.parametrize(
    ("name", "value", "masked"),
    [
        ("ANTHROPIC_API_KEY", "sk-ant-0123456789", True),
        ("ANTHROPIC_AUTH_TOKEN", "tok-0123456789", True),
        ("HF_TOKEN", "hf_0123456789", True),
        ("aws_secret", "wJalrXUtnFEMI", True),
        ("DB_PASSWORD", "correct-horse", True),
        ("my_api_key", "abcdefgh", True),
        ("HF_TOKEN", "short", False),
        ("TOKENIZERS_PARALLELISM", "false-but-long", False),
        ("PATH", "/usr/local/bin:/usr/bin", False),
    ],
)
def test_a_value_is_masked_by_its_variables_name_and_length(name: str, value: str, masked: bool) -> None:
    text = f"the server said {value}!"
    expected = f"the server said [{name} masked]!" if masked else text
    assert mask_secrets(text, {name: value}) == expected


def test_a_secret_containing_another_is_masked_whole() -> None:
    env = {"SHORT_TOKEN": "abcdefgh", "LONG_TOKEN": "abcdefgh-ijklmnop"}
    assert list(secret_values(env)) == ["abcdefgh-ijklmnop", "abcdefgh"]
    assert mask_secrets("x abcdefgh-ijklmnop y abcdefgh", env) == "x [LONG_TOKEN masked] y [SHORT_TOKEN masked]"
