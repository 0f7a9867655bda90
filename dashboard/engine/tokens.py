"""Vision Transformers: token layers laid back on the image's patch grid.

A transformer layer gives (batch, tokens, dim). When the tokens after 0, 1 or 2 prefix tokens (a
class token; DeiT's class and distillation tokens) are exactly the patches of the input, the patch
tokens reshape to (h, w, dim) and are explained like a CNN's activations.

How the grid is found: for a token count T and an input of H x W pixels, the smallest prefix p in
(0, 1, 2) for which some square patch side s gives (H // s) * (W // s) == T - p, with both sides
over 1. The grid then has the input's aspect ratio by construction; a text model, a pooled vector
or a sequence of any other length has no grid and is not offered.
"""

from dataclasses import dataclass

import numpy as np
import tensorflow as tf

PREFIXES = (0, 1, 2)


@dataclass(frozen=True)
class Grid:
    prefix: int  # tokens before the patches
    height: int
    width: int

    def of(self, tokens):
        """(batch, T, dim) -> (batch, h, w, dim): the patch tokens on the grid."""
        return tf.reshape(tokens[:, self.prefix:], (-1, self.height, self.width, tokens.shape[-1]))


def patch_grid(tokens: int, input_size: tuple) -> Grid | None:
    """The patch grid `tokens` tokens form over an input of `input_size` (h, w) pixels, or None."""
    height, width = input_size
    for prefix in PREFIXES:
        patches = tokens - prefix
        for side in range(1, min(height, width) + 1):
            rows, columns = height // side, width // side
            if rows * columns < patches or rows < 2 or columns < 2:
                break  # the grid only shrinks as the patch grows
            if rows * columns == patches:
                return Grid(prefix, rows, columns)
    return None


def aspect_matches(shape: tuple, input_size: tuple) -> bool:
    """A (h, w) feature map with the input's aspect ratio (within the rounding of strided layers).
    Transformers also hold 4-D tensors that are not images: (tokens, heads, dim) projections,
    (heads, tokens, tokens) attention."""
    (h, w), (height, width) = shape, input_size
    return abs(h * width - w * height) <= max(height, width) * 2 and h > 1 and w > 1


def rollout(attentions: list[np.ndarray], fusion: str = "mean", discard: float = 0.0,
            prefix: int = 1) -> np.ndarray:
    """Attention rollout (Abnar & Zuidema, 2020) over the blocks, first to last.

    Each block's attention (heads, T, T) is fused over heads (mean or max); the int(discard * n)
    smallest of its n off-diagonal entries are set to zero (a token always keeps itself), the identity is added for the
    residual connection, and each row is normalised to sum to one, as in the paper
    (0.5 A + 0.5 I, renormalised). The rollout is the product of these matrices, last block on
    the left. What flows from each patch into the class token (row 0) is the map; without a class
    token, the mean of the rows over all tokens. Returns (T - prefix,) values for the patches.
    """
    flow = None
    for attention in attentions:
        fused = attention.max(axis=0) if fusion == "max" else attention.mean(axis=0)
        size = fused.shape[0]
        if discard > 0:
            off_diagonal = np.flatnonzero(~np.eye(size, dtype=bool))
            weakest = off_diagonal[np.argsort(fused.flat[off_diagonal], kind="stable")[: int(discard * off_diagonal.size)]]
            fused = fused.copy()
            fused.flat[weakest] = 0.0
        fused = fused + np.eye(size)
        fused = fused / fused.sum(axis=-1, keepdims=True)
        flow = fused if flow is None else fused @ flow
    source = flow[0] if prefix else flow.mean(axis=0)
    return source[prefix:]
