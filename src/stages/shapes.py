"""Type names for the book's tensors and models, in TransformerLens's shape words.

Used in signatures only (``from __future__ import annotations`` keeps them unevaluated), so a
reader sees ``Resid`` = ``Float[Tensor, "batch pos d_model"]`` where the code says ``Tensor``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, TypeAlias

from jaxtyping import Float, Int
from torch import Tensor

if TYPE_CHECKING:
    from transformer_lens.model_bridge import TransformerBridge as Model
else:
    Model = object  # a transformer_lens TransformerBridge (stages.load_model returns one)

Tokens: TypeAlias = Int[Tensor, "batch pos"]
"""Token ids, each row starting with BOS."""

Resid: TypeAlias = Float[Tensor, "batch pos d_model"]
"""A residual stream (the input or output of a block)."""

Logits: TypeAlias = Float[Tensor, "batch pos d_vocab"]
"""Next-token logits."""

__all__ = ["Logits", "Model", "Resid", "Tokens"]
