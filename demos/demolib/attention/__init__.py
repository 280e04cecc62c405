"""Attention, a one-block transformer, tiled (flash) attention and a selective state space layer,
all in NumPy with hand-written backward passes, plus their ONNX exports.

Used by the demos of the attention-mechanism, transformer, flash-attention and mamba terms::

    from demolib import attention as att

One module per model; this package re-exports every public name, so ``att.X`` works for all:

* ``common``: **scaled dot-product attention** (``attention``, ``attention_backward``) on arrays with any
  leading batch axes: ``O = softmax(Q K^T * scale) V``.
* ``lookup``: **key-value lookup** (``lookup_batch``, ``Lookup``, ``train_lookup``, ``export_lookup``): a
  single attention layer that learns to retrieve the value stored under a queried key.
* ``lookup``: **softmax saturation** (``saturation``): how peaked the attention weights get, and how small
  their gradient, for random unit-variance queries and keys of growing width, with and without
  the ``1/sqrt(d)`` scale.
* ``block``: **transformer block** (``Block``, ``block_forward``, ``block_backward``, ``train_block``,
  ``export_block``): pre-LayerNorm self-attention + ReLU MLP with residuals, on token vectors
  (one-hot tokens or image patches), per-token or mean-pooled output.
* ``tiled``: **tiled attention** (``tiled_attention``, ``standard_attention``): the FlashAttention
  algorithm (online softmax over key/value blocks) with a ``Ledger`` that records the largest
  array each algorithm holds and the elements it moves to and from the big arrays.
* ``ssm``: **selective state space model** (``SSM``, ``ssm_forward``, ``ssm_backward``, ``train_ssm``,
  ``lti_kernel``, ``export_ssm``): a diagonal state space layer with zero-order-hold
  discretisation whose step ``Δ``, input map ``B`` and output map ``C`` may depend on the input
  (Mamba's S6) or not (a linear time-invariant layer, which is also a convolution).

Everything trains in float64; exports use IR 10 / opset 17 (``onnx_export.make_model``).
"""

from demolib.attention.block import (
    Block,
    block_backward,
    block_forward,
    export_block,
    init_block,
    layer_norm,
    layer_norm_backward,
    train_block,
)
from demolib.attention.common import (
    attention,
    attention_backward,
    causal_mask,
    cross_entropy,
    hinton,
    softmax,
    softmax_backward,
)
from demolib.attention.lookup import (
    Lookup,
    LookupData,
    Saturation,
    export_lookup,
    init_lookup,
    lookup_backward,
    lookup_batch,
    lookup_forward,
    saturation,
    softmax_jacobian_norm,
    train_lookup,
)
from demolib.attention.ssm import (
    SSM,
    export_lti_conv,
    export_ssm,
    init_ssm,
    lti_convolve,
    lti_expected_mse,
    lti_kernel,
    marked_recall,
    softplus,
    ssm_backward,
    ssm_forward,
    train_ssm,
)
from demolib.attention.tiled import Ledger, RowTrace, standard_attention, tiled_attention

__all__ = [
    "SSM", "Block", "Ledger", "Lookup", "LookupData", "RowTrace", "Saturation", "attention",
    "attention_backward", "block_backward", "block_forward", "causal_mask", "cross_entropy",
    "export_block", "export_lookup", "export_lti_conv", "export_ssm", "hinton", "init_block",
    "init_lookup", "init_ssm", "layer_norm", "layer_norm_backward", "lookup_backward", "lookup_batch",
    "lookup_forward", "lti_convolve", "lti_expected_mse", "lti_kernel", "marked_recall", "saturation",
    "softmax", "softmax_backward", "softmax_jacobian_norm", "softplus", "ssm_backward", "ssm_forward",
    "standard_attention", "tiled_attention", "train_block", "train_lookup", "train_ssm",
]
