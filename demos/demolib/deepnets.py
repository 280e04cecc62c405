"""Fully connected nets for the deep-learning terms: any of four activations, optional identity
skips, hand-written backpropagation that counts its multiply-adds, finite differences, ONNX export.

A net with ``sizes = [d, w1, ..., wk, out]`` has ``k`` hidden layers and one output layer. Hidden
layer ``i`` computes ``z = a @ W[i] + b[i]`` and then

* plain:    ``a' = act(z)``
* residual: ``a' = a + act(z)`` (an identity skip), for every hidden layer whose ``W`` is square;
  the first hidden layer (input width to hidden width) stays plain.

The output layer is a plain ``a @ W + b`` (logits or predictions). Weights are
``(fan_in, fan_out)``, as an ONNX ``Gemm`` without transposes, and training runs in float64.
``params()`` and the gradient lists use the order ``W0, b0, W1, b1, ...``, so the optimisers of
``demolib.nets`` (``SGD``, ``Adam``) work on these nets unchanged.

Counting work: pass a ``MacCounter`` to ``forward`` / ``backward`` / ``numerical_gradient`` and
it adds up the multiply-adds of every matrix product actually performed (``m * k * n`` for an
``(m, k) @ (k, n)`` product). Elementwise work (activations, bias adds) is not counted; it is a
small extra, linear in the number of units.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from typing import Literal

import numpy as np
from onnx import GraphProto

from demolib import nets
from demolib.activations import ONNX_OPS as ONNX_OPS  # re-exported: callers look ops up here
from demolib.activations import activate, derivative
from demolib.dense import DenseLayers, init_dense
from demolib.graph import Graph, tensor

Activation = Literal["identity", "relu", "tanh", "sigmoid"]
ACTIVATIONS: tuple[Activation, ...] = ("identity", "relu", "tanh", "sigmoid")
Head = Literal["identity", "sigmoid"]
LossFn = Callable[[np.ndarray, np.ndarray], tuple[float, np.ndarray]]


# --------------------------------------------------------------------------- counting


@dataclass
class MacCounter:
    """Adds up the multiply-adds of the matrix products routed through ``matmul``."""

    macs: int = 0
    products: int = 0

    def matmul(self, a: np.ndarray, b: np.ndarray) -> np.ndarray:
        self.macs += int(a.shape[0]) * int(a.shape[1]) * int(b.shape[1])
        self.products += 1
        return a @ b


def _mm(counter: MacCounter | None, a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return a @ b if counter is None else counter.matmul(a, b)


def forward_macs(sizes: Sequence[int], n: int) -> int:
    """Multiply-adds of one forward pass over ``n`` examples: ``n * sum(fan_in * fan_out)``."""
    return n * sum(int(m) * int(k) for m, k in zip(sizes[:-1], sizes[1:], strict=True))


def backward_macs(sizes: Sequence[int], n: int) -> int:
    """Multiply-adds of ``backward``: every ``dW = a.T @ dz`` plus every ``da = dz @ W.T``
    except the one into the input layer (nobody needs the gradient w.r.t. the data)."""
    pairs = list(zip(sizes[:-1], sizes[1:], strict=True))
    return n * (2 * sum(m * k for m, k in pairs) - pairs[0][0] * pairs[0][1])


# --------------------------------------------------------------------------- model


@dataclass
class Net(DenseLayers):
    """Weights of a fully connected net; ``weights[i]`` has shape ``(sizes[i], sizes[i+1])``."""

    weights: list[np.ndarray]
    biases: list[np.ndarray]
    activation: Activation = "tanh"
    residual: bool = False

    def __post_init__(self) -> None:
        if self.activation not in ACTIVATIONS:
            raise ValueError(f"unknown activation {self.activation!r}; use one of {ACTIVATIONS}")

    def skips(self) -> list[bool]:
        """Per hidden layer: does it add its input back (``a + act(z)``)?"""
        return [
            self.residual and i > 0 and self.weights[i].shape[0] == self.weights[i].shape[1]
            for i in range(self.n_hidden)
        ]

    @property
    def n_params(self) -> int:
        return sum(p.size for p in self.params())

    def astype(self, dtype: type | np.dtype) -> Net:
        """A copy with every parameter in ``dtype`` (float32 trains about twice as fast here and
        is what the ONNX export stores)."""
        return replace(self, weights=[w.astype(dtype) for w in self.weights],
                       biases=[b.astype(dtype) for b in self.biases])


def init_net(
    rng: np.random.Generator,
    sizes: Sequence[int],
    activation: Activation = "tanh",
    *,
    residual: bool = False,
    gain: float | None = None,
    branch_scale: float = 1.0,
) -> Net:
    """Random net with zero biases and weights ``N(0, gain / fan_in)``.

    ``gain`` defaults to 2 for ReLU (He initialisation) and 1 otherwise. In a residual net the
    weights of every skipped layer are multiplied by ``branch_scale`` (residual branches are
    usually started small so the sum of many of them does not blow up).
    """
    if len(sizes) < 2:
        raise ValueError("need at least an input and an output size")
    g = (2.0 if activation == "relu" else 1.0) if gain is None else float(gain)
    weights, biases = init_dense(rng, sizes, [g] * (len(sizes) - 1))
    net = Net(weights, biases, activation, residual)
    for i, skip in enumerate(net.skips()):
        if skip:
            weights[i] *= branch_scale
    return net


def collapse_linear(net: Net) -> tuple[np.ndarray, np.ndarray]:
    """For a net with the identity activation: the single affine map ``x @ W + b`` it computes.

    Every layer is affine (``a @ W + b``, or ``a @ (I + W) + b`` with a skip), and a composition
    of affine maps is affine, so the whole net equals one linear layer, however deep it is.
    """
    if net.activation != "identity":
        raise ValueError(f"only a net with the identity activation is linear, not {net.activation!r}")
    W = np.eye(net.sizes[0])
    b = np.zeros(net.sizes[0])
    skips = net.skips() + [False]
    for w_i, b_i, skip in zip(net.weights, net.biases, skips, strict=True):
        layer = w_i + np.eye(w_i.shape[0]) if skip else w_i
        W, b = W @ layer, b @ layer + b_i
    return W, b


# --------------------------------------------------------------------------- forward / backward


@dataclass
class Trace:
    """What ``backward`` needs from ``forward``."""

    inputs: list[np.ndarray] = field(default_factory=list)  # the input of every Gemm
    acts: list[np.ndarray] = field(default_factory=list)  # act(z) of every hidden layer
    pre: list[np.ndarray] = field(default_factory=list)  # z of every hidden layer


@dataclass
class Grads:
    """Gradients from ``backward``: ``params`` in ``Net.params()`` order and, per Gemm ``i >= 1``,
    ``inputs[i]`` = dLoss/d(input of Gemm i) (``inputs[0]`` is None: not computed)."""

    params: list[np.ndarray]
    inputs: list[np.ndarray | None]

    def layer_norms(self) -> np.ndarray:
        """Euclidean norm of dLoss/dW for every layer, first layer first."""
        return np.array([float(np.linalg.norm(g)) for g in self.params[::2]])


def forward(net: Net, X: np.ndarray, counter: MacCounter | None = None) -> tuple[np.ndarray, Trace]:
    """Output of the net for ``X (n, d)`` and the trace for ``backward``."""
    trace = Trace()
    a = X
    for i, skip in enumerate(net.skips()):
        trace.inputs.append(a)
        z = _mm(counter, a, net.weights[i]) + net.biases[i]
        h = activate(net.activation, z)
        trace.pre.append(z)
        trace.acts.append(h)
        a = a + h if skip else h
    trace.inputs.append(a)
    return _mm(counter, a, net.weights[-1]) + net.biases[-1], trace


def predict(net: Net, X: np.ndarray) -> np.ndarray:
    return forward(net, X)[0]


def backward(net: Net, trace: Trace, dout: np.ndarray, counter: MacCounter | None = None) -> Grads:
    """Backpropagation: gradients of the loss given ``dout = dLoss/dOutput``, by the chain rule
    from the output layer back to the first, reusing what ``forward`` stored.

    For hidden layer ``i`` with input ``a``: ``dz = da' * act'(z)``, ``dW = a.T @ dz``,
    ``db = sum(dz)``, and ``da = dz @ W.T`` (plus ``da'`` itself when the layer has a skip, since
    ``a' = a + act(z)``).
    """
    n_layers = len(net.weights)
    gparams: list[np.ndarray] = [np.empty(0)] * (2 * n_layers)
    ginputs: list[np.ndarray | None] = [None] * n_layers
    skips = net.skips()
    last = n_layers - 1
    gparams[2 * last] = _mm(counter, trace.inputs[last].T, dout)
    gparams[2 * last + 1] = dout.sum(axis=0)
    if last == 0:
        return Grads(gparams, ginputs)
    da = _mm(counter, dout, net.weights[last].T)
    ginputs[last] = da
    for i in reversed(range(last)):
        dz = da * derivative(net.activation, trace.pre[i], trace.acts[i])
        gparams[2 * i] = _mm(counter, trace.inputs[i].T, dz)
        gparams[2 * i + 1] = dz.sum(axis=0)
        if i == 0:
            break
        branch = _mm(counter, dz, net.weights[i].T)
        da = branch + da if skips[i] else branch
        ginputs[i] = da
    return Grads(gparams, ginputs)


def loss_and_grads(
    net: Net, X: np.ndarray, y: np.ndarray, loss: LossFn, counter: MacCounter | None = None
) -> tuple[float, Grads]:
    """One forward and one backward pass: the loss and its gradients."""
    out, trace = forward(net, X, counter)
    value, dout = loss(out, y)
    return value, backward(net, trace, dout, counter)


def flatten(arrays: Sequence[np.ndarray]) -> np.ndarray:
    """All arrays as one flat float64 vector (``Net.params()`` order)."""
    return np.concatenate([np.asarray(a, float).ravel() for a in arrays])


def numerical_gradient(
    net: Net,
    X: np.ndarray,
    y: np.ndarray,
    loss: LossFn,
    *,
    h: float = 1e-5,
    indices: Sequence[int] | np.ndarray | None = None,
    counter: MacCounter | None = None,
) -> np.ndarray:
    """Central finite differences ``(L(w + h e_k) - L(w - h e_k)) / 2h`` for every parameter ``k``
    (or only those in ``indices``, flat positions in ``Net.params()`` order): two forward passes
    per parameter. Returns a flat vector (only the requested entries are filled, others are 0)."""
    params = net.params()
    offsets = np.cumsum([0] + [p.size for p in params])
    chosen = range(offsets[-1]) if indices is None else [int(k) for k in indices]
    grad = np.zeros(offsets[-1])
    for k in chosen:
        j = int(np.searchsorted(offsets, k, side="right")) - 1
        flat = params[j].reshape(-1)  # a view: writes go into the net
        old = flat[k - offsets[j]]
        flat[k - offsets[j]] = old + h
        up = loss(forward(net, X, counter)[0], y)[0]
        flat[k - offsets[j]] = old - h
        down = loss(forward(net, X, counter)[0], y)[0]
        flat[k - offsets[j]] = old
        grad[k] = (up - down) / (2.0 * h)
    return grad


def train(
    net: Net,
    X: np.ndarray,
    y: np.ndarray,
    loss: LossFn,
    opt: nets.Optimizer,
    *,
    steps: int,
    record_every: int = 1,
) -> tuple[list[int], list[float]]:
    """Full-batch training in place; returns the steps and the training losses recorded before
    step 1 and every ``record_every`` steps (the loss of the forward pass of that step)."""
    params = net.params()
    rec_steps: list[int] = []
    losses: list[float] = []
    for s in range(steps + 1):
        value, grads = loss_and_grads(net, X, y, loss)
        if s % record_every == 0 or s == steps:
            rec_steps.append(s)
            losses.append(value)
        if s == steps:
            break
        opt.step(params, grads.params)
    return rec_steps, losses


# --------------------------------------------------------------------------- ONNX export


def _net_nodes(g: Graph, net: Net, prefix: str) -> str:
    a = "x"
    skips = net.skips()
    for i in range(len(net.weights)):
        z = g.op("Gemm", [a, g.const(f"{prefix}W{i}", net.weights[i]), g.const(f"{prefix}b{i}", net.biases[i])],
                 f"{prefix}gemm{i}")
        if i == net.n_hidden:
            return z
        h = g.act(net.activation, z, f"{prefix}act{i}")
        a = g.op("Add", [a, h], f"{prefix}skip{i}") if skips[i] else h
    raise AssertionError("unreachable")


def export_net(net: Net, *, head: Head = "identity", name: str = "net") -> GraphProto:
    """``x (N, d) -> [Gemm -> Relu|Tanh|Sigmoid|Identity -> (Add skip)] ... -> Gemm -> head -> y``.

    Each skipped hidden layer ends with an ``Add`` of its input and its activation; the head is
    an ``Identity`` (raw outputs) or a ``Sigmoid`` (probabilities).
    """
    g = Graph()
    out = _net_nodes(g, net, "")
    g.op("Sigmoid" if head == "sigmoid" else "Identity", [out], "y")
    kind = "residual" if net.residual else "plain"
    return g.build(name, [tensor("x", ["N", net.sizes[0]])], [tensor("y", ["N", net.sizes[-1]])],
                   f"{kind} net {net.sizes}, {net.activation}")


def export_nets(members: Sequence[Net], *, name: str = "nets") -> GraphProto:
    """Several nets side by side on the same input ``x``; ``y`` concatenates their outputs on
    axis 1 (member ``k`` is ``y[:, k*out:(k+1)*out]``)."""
    if not members:
        raise ValueError("need at least one net")
    d_in, d_out = members[0].sizes[0], members[0].sizes[-1]
    if any(m.sizes[0] != d_in or m.sizes[-1] != d_out for m in members):
        raise ValueError("all nets need the same input and output sizes")
    g = Graph()
    outs = [_net_nodes(g, m, f"m{k}_") for k, m in enumerate(members)]
    g.op("Concat", outs, "y", axis=1)
    return g.build(name, [tensor("x", ["N", d_in])], [tensor("y", ["N", d_out * len(members)])],
                   f"{len(members)} nets side by side")


def export_activation(name: Activation) -> GraphProto:
    """A lone activation node ``y = act(x)`` on any shape (to evaluate the function itself)."""
    g = Graph()
    g.act(name, "x", "y")
    return g.build(name, [tensor("x", ["N"])], [tensor("y", ["N"])])
