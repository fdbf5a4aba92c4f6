"""Type names for the book's tensors and models, and its hook points, in TransformerLens's words.

Used in signatures only (``from __future__ import annotations`` keeps them unevaluated), so a
reader sees ``Resid`` = ``Float[Tensor, "batch pos d_model"]`` where the code says ``Tensor``;
importing this module loads neither torch nor jaxtyping.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, TypeAlias

if TYPE_CHECKING:  # type checkers see the shapes; at run time nothing heavy is imported
    from jaxtyping import Float, Int
    from torch import Tensor
    from transformer_lens.model_bridge import TransformerBridge as Model

    Tokens: TypeAlias = Int[Tensor, "batch pos"]
    Resid: TypeAlias = Float[Tensor, "batch pos d_model"]
    Logits: TypeAlias = Float[Tensor, "batch pos d_vocab"]
else:
    Model = object  # a transformer_lens TransformerBridge (stages.load_model returns one)
    Tokens = Resid = Logits = object

# What the names stand for (a reader of a signature sees these):
#   Model   a TransformerBridge from stages.load_model
#   Tokens  Int[Tensor, "batch pos"]: token ids, each row starting with BOS
#   Resid   Float[Tensor, "batch pos d_model"]: a residual stream (a block's input or output)
#   Logits  Float[Tensor, "batch pos d_vocab"]: next-token logits

HOOK_POINTS: dict[str, str] = {
    "blocks.{layer}.hook_resid_pre": "[batch, pos, d_model]: the residual entering the block",
    "blocks.{layer}.hook_resid_post": "[batch, pos, d_model]: the residual leaving the block",
    "blocks.{layer}.hook_attn_out": "[batch, pos, d_model]: what attention adds",
    "blocks.{layer}.hook_mlp_out": "[batch, pos, d_model]: what the MLP adds",
    "blocks.{layer}.attn.hook_pattern": "[batch, head, query_pos, key_pos]: attention weights",
    "blocks.{layer}.mlp.out.hook_in": "[batch, pos, d_mlp]: the MLP's neuron activations",
}
"""Every hook point ``stages`` uses, with the shape it carries."""

__all__ = ["HOOK_POINTS", "Logits", "Model", "Resid", "Tokens"]
