"""Dollar cost of a model call, from one dated price table (`orchestrator/data/prices.json`).

Override the table with ORCHESTRATE_PRICES=path.json (same shape). Models are priced by exact id, then by
family ("opus", "sonnet", "haiku" in the id); anything else (a local GGUF model) costs nothing.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

from orchestrator.errors import UserError

__all__ = ["FREE", "Price", "PriceTable", "TokenCounts", "load_prices"]


@dataclass(frozen=True)
class Price:
    """USD per million tokens."""

    input: float
    output: float
    cache_write: float
    cache_read: float


FREE = Price(0.0, 0.0, 0.0, 0.0)


@dataclass(frozen=True)
class TokenCounts:
    """Tokens of a call or a sum of calls, with one definition everywhere (the records, `usage` in
    `--json` and the API, `show`, the HTML trace): `input` is the input the cache did not serve, as the
    Messages API counts `input_tokens`; cache reads and writes are counted apart, never inside it. What the
    model read is the sum of the three."""

    input: int
    output: int
    cache_write: int = 0
    cache_read: int = 0

    def __add__(self, other: TokenCounts) -> TokenCounts:
        return TokenCounts(
            self.input + other.input, self.output + other.output, self.cache_write + other.cache_write,
            self.cache_read + other.cache_read,
        )  # fmt: skip

    @classmethod
    def total(cls, counts: Iterable[TokenCounts]) -> TokenCounts:
        return sum(counts, cls(0, 0))

    @classmethod
    def of_usage(cls, usage: Mapping[str, Any]) -> TokenCounts:
        """From a `usage` mapping (a run's totals, or one agent's or model's)."""
        return cls(*(int(usage.get(f"{name}_tokens", 0)) for name in ("input", "output", "cache_write", "cache_read")))

    def describe(self) -> str:
        """ "1,200 input + 8,000 cache read + 300 cache write / 450 output tokens" (cache parts when any)."""
        parts = [f"{self.input:,} input"]
        parts += [f"{n:,} cache {kind}" for n, kind in ((self.cache_read, "read"), (self.cache_write, "write")) if n]
        return f"{' + '.join(parts)} / {self.output:,} output tokens"


@dataclass(frozen=True)
class PriceTable:
    as_of: str
    models: Mapping[str, Price]
    families: Mapping[str, Price]

    def price(self, model: str) -> Price | None:
        """The model's price; a Claude id by its family when not listed; None (unpriced) for any other
        model the table does not list: Claude prices are never used for another model."""
        if model in self.models:
            return self.models[model]
        if model.endswith(".gguf"):
            return FREE  # a local model file: tokens cost nothing
        if model.startswith("claude"):
            return next((price for family, price in self.families.items() if family in model), None)
        return None

    def priced(self, model: str) -> bool:
        return self.price(model) is not None

    def cost(self, model: str, tokens: TokenCounts) -> float:
        """USD for the tokens; 0 for an unpriced model (`priced` tells the two apart)."""
        price = self.price(model) or FREE
        micro = (
            tokens.input * price.input
            + tokens.output * price.output
            + tokens.cache_write * price.cache_write
            + tokens.cache_read * price.cache_read
        )
        return micro / 1_000_000


def _prices(raw: Mapping[str, Mapping[str, float]], source: str) -> dict[str, Price]:
    try:
        return {name: Price(**values) for name, values in raw.items()}
    except TypeError as exc:
        raise UserError(f"{source}: each price needs input, output, cache_write, cache_read ({exc})") from exc


def load_prices(path: Path | None = None) -> PriceTable:
    """The price table: `path`, else ORCHESTRATE_PRICES, else the bundled one."""
    override = path or (Path(os.environ["ORCHESTRATE_PRICES"]) if os.environ.get("ORCHESTRATE_PRICES") else None)
    source = str(override) if override else "orchestrator/data/prices.json"
    try:
        text = (
            override.read_text()
            if override
            else resources.files("orchestrator").joinpath("data/prices.json").read_text()
        )
        data = json.loads(text)
    except (OSError, json.JSONDecodeError) as exc:
        raise UserError(f"price table {source}: {exc}") from exc
    return PriceTable(
        str(data.get("as_of", "?")), _prices(data.get("models", {}), source), _prices(data.get("families", {}), source)
    )
