"""Transfer learning on tiny models: related source and target tasks, fine-tuning with frozen
parts, residual bottleneck adapters, and a one-layer attention classifier with learned prefix
keys and values. Used by the fine-tuning, adapter-layers and prefix-tuning demos.

Everything is float64 NumPy with hand-written backward passes (the tests check them against
finite differences) and ONNX exports (the tests check ONNX Runtime against the NumPy forward):

* **Related tasks** (``related_tasks``, ``make_setup``): random "teacher" networks label
  ``x ~ N(0, I)`` by ``argmax(tanh(tanh(x A) C) B)``. Source and target share the low-level
  features ``tanh(x A)``; the target's high-level weights are rotated away from the source's by
  ``shift`` and it has its own readout and number of classes. ``make_setup`` draws the data and
  pretrains a ReLU MLP on plenty of source examples.
* **Training with frozen parts** (``fit``): Adam/SGD on softmax cross-entropy where only the
  arrays flagged in ``trainable`` move (``top_layers``, ``head_only``,
  ``AdapterMLP.adapter_tuning``, ``AttentionClassifier.prefix_tuning``), with optional
  mini-batches and early stopping that restores the best checkpoint. ``with_new_head`` and
  ``with_head_of`` swap output layers.
* **Adapters** (``AdapterMLP``): a frozen ``nets.MLP`` with a residual bottleneck
  ``h + relu(h Wd + bd) Wu + bu`` after each hidden layer; ``Wu`` starts at zero, so the adapted
  net starts as exactly the pretrained one. ``export_adapter_mlp`` writes it with ``Gemm``,
  ``Relu`` and ``Add`` nodes.
* **Prefix attention** (``AttentionClassifier``, ``polarity_lexicons``, ``sample_sequences``):
  token embeddings, one single-head self-attention layer with a residual connection, mean
  pooling and a linear readout. ``k`` learned prefix keys and values are put in front of every
  sequence's keys and values (the tokens attend to them; they are not tokens themselves).
  ``export_attention`` writes it with ``Gather``, ``MatMul``, ``Expand`` + ``Concat`` for the
  prefix, ``Softmax`` and ``ReduceMean``; a second output returns the attention weights.

Modules: ``tasks`` (related tasks, ``fit``, heads, metrics), ``adapters`` (``AdapterMLP``) and
``prefix`` (``AttentionClassifier``); this package re-exports their public names, so
``from demolib import transfer`` and ``transfer.X`` work as before.
"""

from demolib.transfer.adapters import Adapter, AdapterMLP, export_adapter_mlp
from demolib.transfer.prefix import AttentionClassifier, export_attention, polarity_lexicons, sample_sequences
from demolib.transfer.tasks import (
    Teacher,
    TransferSetup,
    accuracy,
    cross_entropy,
    fit,
    head_only,
    make_setup,
    mlp_loss_grads,
    n_params,
    related_tasks,
    top_layers,
    with_head_of,
    with_new_head,
)

__all__ = [
    "Adapter", "AdapterMLP", "AttentionClassifier", "Teacher", "TransferSetup", "accuracy",
    "cross_entropy", "export_adapter_mlp", "export_attention", "fit", "head_only", "make_setup",
    "mlp_loss_grads", "n_params", "polarity_lexicons", "related_tasks", "sample_sequences",
    "top_layers", "with_head_of", "with_new_head",
]
