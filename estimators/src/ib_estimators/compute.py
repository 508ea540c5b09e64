"""Compute and money: FLOPs per generation (the paper's C_dense) and API cost from a price table."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass


@dataclass(frozen=True)
class ModelSpec:
    """The architecture figures the dense-transformer FLOPs formula needs.

    Attributes:
        n_params: Non-embedding parameter count N.
        n_layers: Number of transformer layers.
        d_attn: Attention width (heads x head dimension).
        name: Optional model name, for reports.
    """

    n_params: float
    n_layers: int
    d_attn: int
    name: str = ""

    def __post_init__(self) -> None:
        if self.n_params <= 0 or self.n_layers <= 0 or self.d_attn <= 0:
            msg = f"ModelSpec figures must be positive, got {self}"
            raise ValueError(msg)


def flops_per_generation(spec: ModelSpec, prompt_tokens: int, output_tokens: int) -> float:
    """FLOPs of one call: C_dense = 2 N + 2 n_layer n_ctx d_attn per token, summed over tokens.

    Each token t (1-based over prompt then output) attends to the t tokens before and including
    it, so n_ctx = t for that token. The sum over T = prompt + output tokens is
    ``2 N T + 2 n_layer d_attn T (T + 1) / 2``.

    Args:
        spec: The model's architecture figures.
        prompt_tokens: Tokens in the prompt (prefill).
        output_tokens: Tokens generated.

    Returns:
        Forward-pass FLOPs for the call.

    Raises:
        ValueError: On negative token counts.

    Example:
        >>> spec = ModelSpec(n_params=1e6, n_layers=2, d_attn=64)
        >>> flops_per_generation(spec, prompt_tokens=3, output_tokens=1)
        8002560.0
    """
    if prompt_tokens < 0 or output_tokens < 0:
        msg = f"token counts must be non-negative, got {prompt_tokens} and {output_tokens}"
        raise ValueError(msg)
    total = prompt_tokens + output_tokens
    attention = 2.0 * spec.n_layers * spec.d_attn * total * (total + 1) / 2.0
    return 2.0 * spec.n_params * total + attention


@dataclass(frozen=True)
class Price:
    """Price of a model in currency units per million tokens."""

    input_per_million: float
    output_per_million: float


DEFAULT_PRICES: Mapping[str, Price] = {
    # Public list prices in USD per million tokens as published by the providers in 2025;
    # pass your own table for current or negotiated prices. Local models cost 0.
    "gpt-4o": Price(2.50, 10.00),
    "gpt-4o-mini": Price(0.15, 0.60),
    "gpt-4.1": Price(2.00, 8.00),
    "gpt-4.1-mini": Price(0.40, 1.60),
    "local": Price(0.0, 0.0),
}


def api_cost(
    model: str,
    input_tokens: int,
    output_tokens: int,
    *,
    prices: Mapping[str, Price] | None = None,
) -> float:
    """Cost of one call from a price table.

    Args:
        model: Model name, a key of the price table.
        input_tokens: Prompt tokens billed.
        output_tokens: Completion tokens billed.
        prices: Price table; ``DEFAULT_PRICES`` when omitted.

    Returns:
        Cost in the table's currency.

    Raises:
        ValueError: If the model is not in the table or a count is negative.

    Example:
        >>> api_cost("gpt-4o-mini", 1_000_000, 0)
        0.15
    """
    table = DEFAULT_PRICES if prices is None else prices
    if model not in table:
        known = ", ".join(sorted(table))
        msg = f"no price for model {model!r}; add it to the price table (known: {known})"
        raise ValueError(msg)
    if input_tokens < 0 or output_tokens < 0:
        msg = f"token counts must be non-negative, got {input_tokens} and {output_tokens}"
        raise ValueError(msg)
    price = table[model]
    return (input_tokens * price.input_per_million + output_tokens * price.output_per_million) / 1e6
