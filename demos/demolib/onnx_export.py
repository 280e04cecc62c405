"""Export demolib models to ONNX (built with ``demolib.graph.Graph``), and ``make_model`` / ``session``.

Every graph takes a float32 input ``x`` of shape ``(N, d)`` (dynamic batch ``N``) and returns
``y``. Wrap a graph with ``make_model`` (IR version 10, opset 17: what onnxruntime 1.31 accepts;
onnx 1.23 would otherwise write IR 14, which ORT refuses).

Node mapping: a layer ``a @ W + b`` is a ``Gemm``; hidden layers add ``BatchNormalization``
(inference mode, running statistics), ``Relu``/``Tanh`` and ``Dropout``; heads are
``Sigmoid``/``Softmax``; linear models are ``MatMul`` + ``Add`` (polynomials add a ``Pow``).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Literal

import numpy as np
from onnx import GraphProto, ModelProto, TensorProto, ValueInfoProto, helper

from demolib.graph import Graph, tensor
from demolib.linear import LinearModel
from demolib.nets import MLP

if TYPE_CHECKING:
    import onnxruntime

IR_VERSION = 10
OPSET = 17
Head = Literal["identity", "sigmoid", "softmax"]


def make_model(graph: GraphProto, *, doc_string: str = "") -> ModelProto:
    """Wrap ``graph`` in a model with ``ir_version=10`` and the default domain at opset 17."""
    return helper.make_model(
        graph,
        ir_version=IR_VERSION,
        opset_imports=[helper.make_opsetid("", OPSET)],
        producer_name="termlab-demolib",
        doc_string=doc_string,
    )


def session(model: ModelProto) -> onnxruntime.InferenceSession:
    """A single-threaded CPU ORT session (for tests and stand-alone runs; demos use demo.onnx)."""
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.intra_op_num_threads = 1
    opts.inter_op_num_threads = 1
    return ort.InferenceSession(model.SerializeToString(), opts, providers=["CPUExecutionProvider"])


def _x_input(d: int) -> ValueInfoProto:
    return tensor("x", ["N", d])


def _mlp_nodes(
    g: Graph,
    net: MLP,
    x: str,
    prefix: str,
    *,
    training_mode: str | None,
    seed: int | None,
) -> str:
    a = x
    for i in range(len(net.weights)):
        w = g.const(f"{prefix}W{i}", net.weights[i])
        b = g.const(f"{prefix}b{i}", net.biases[i])
        a = g.op("Gemm", [a, w, b], f"{prefix}gemm{i}")
        if i == net.n_hidden:
            break
        if net.batchnorm is not None:
            bn = net.batchnorm[i]
            a = g.op(
                "BatchNormalization",
                [
                    a,
                    g.const(f"{prefix}bn{i}_scale", bn.gamma),
                    g.const(f"{prefix}bn{i}_bias", bn.beta),
                    g.const(f"{prefix}bn{i}_mean", bn.running_mean),
                    g.const(f"{prefix}bn{i}_var", bn.running_var),
                ],
                f"{prefix}bn{i}",
                epsilon=float(bn.eps),
                momentum=float(bn.momentum),
            )
        a = g.act(net.activation, a, f"{prefix}act{i}")
        if net.dropout > 0.0:
            ins = [a, g.const(f"{prefix}drop{i}_ratio", np.float32(net.dropout))]
            if training_mode is not None:
                ins.append(training_mode)
            attrs = {} if seed is None else {"seed": int(seed) + i}
            a = g.op("Dropout", ins, f"{prefix}drop{i}", **attrs)
    return a


def _head(g: Graph, a: str, head: Head) -> str:
    if head == "identity":
        return g.op("Identity", [a], "y")
    if head == "sigmoid":
        return g.op("Sigmoid", [a], "y")
    if head == "softmax":
        return g.op("Softmax", [a], "y", axis=-1)
    raise ValueError(f"unknown head {head!r}")


def export_mlp(
    net: MLP,
    *,
    head: Head = "identity",
    name: str = "mlp",
    training_mode_input: bool = False,
    seed: int | None = None,
) -> GraphProto:
    """An MLP as ``x -> Gemm -> [BatchNormalization] -> Relu|Tanh -> [Dropout] ... -> head -> y``.

    Dropout nodes get no ``training_mode`` input (so they are the identity) unless
    ``training_mode_input`` is set; then the graph has a required bool scalar input
    ``training_mode`` wired into every Dropout node, and ``seed`` (+ layer index) seeds them.
    """
    g = Graph()
    tm = "training_mode" if training_mode_input and net.dropout > 0.0 else None
    a = _mlp_nodes(g, net, "x", "", training_mode=tm, seed=seed)
    y = _head(g, a, head)
    inputs = [_x_input(net.sizes[0])]
    if tm is not None:
        inputs.append(tensor(tm, [], TensorProto.BOOL))
    out = tensor(y, ["N", net.sizes[-1]])
    return g.build(name, inputs, [out], f"MLP {net.sizes}, {net.activation}")


def export_mlps(nets: Sequence[MLP], *, head: Head = "identity", name: str = "mlps") -> GraphProto:
    """Several MLPs side by side on the same input; ``y`` concatenates their outputs on axis 1.

    Useful to evaluate a whole hyper-parameter sweep with one session run: member ``k``'s
    output is ``y[:, k*out:(k+1)*out]``. Heads are applied per member.
    """
    if not nets:
        raise ValueError("need at least one net")
    d_in, d_out = nets[0].sizes[0], nets[0].sizes[-1]
    if any(n.sizes[0] != d_in or n.sizes[-1] != d_out for n in nets):
        raise ValueError("all nets need the same input and output sizes")
    g = Graph()
    outs = []
    for k, net in enumerate(nets):
        a = _mlp_nodes(g, net, "x", f"m{k}_", training_mode=None, seed=None)
        if head == "sigmoid":
            a = g.op("Sigmoid", [a], f"m{k}_sigmoid")
        elif head == "softmax":
            a = g.op("Softmax", [a], f"m{k}_softmax", axis=-1)
        outs.append(a)
    g.op("Concat", outs, "y", axis=1)
    out = tensor("y", ["N", d_out * len(nets)])
    return g.build(name, [_x_input(d_in)], [out], f"{len(nets)} MLPs side by side")


def export_linear(model: LinearModel, *, degree: int | None = None, name: str = "linear") -> GraphProto:
    """A linear model ``y = x @ coef + intercept`` with ``y`` of shape ``(N,)``.

    With ``degree`` the input is a single feature ``x (N, 1)`` and the graph builds the
    polynomial features ``x^1 .. x^degree`` itself (``pow_features``), matching
    ``linear.poly_features``.
    """
    g = Graph()
    coef = np.asarray(model.coef, float).reshape(-1)
    a = "x"
    d_in = coef.size
    if degree is not None:
        if degree != coef.size:
            raise ValueError(f"degree {degree} but {coef.size} coefficients")
        a = pow_features(degree)(g, "x")
        d_in = 1
    a = g.op("MatMul", [a, g.const("coef", coef)], "matmul")
    g.op("Add", [a, g.const("intercept", np.float32(model.intercept))], "y")
    return g.build(name, [_x_input(d_in)], [tensor("y", ["N"])], "linear model")


# --------------------------------------------------------------------------- linear sweeps

#: Adds the nodes that turn the one-column input (named by the ``str``) into a ``features``
#: tensor of ``d`` columns; returns its name.
FeatureNodes = Callable[[Graph, str], str]


def pow_features(degree: int) -> FeatureNodes:
    """Monomials ``x^1 .. x^degree`` (one ``Pow`` with a broadcast exponent vector)."""
    def nodes(g: Graph, x: str) -> str:
        return g.op("Pow", [x, g.const("exponents", np.arange(1, degree + 1, dtype=np.float32))], "features")
    return nodes


def rbf_features(centers: np.ndarray, width: float) -> FeatureNodes:
    """Gaussian bumps ``exp(-(x - c_j)^2 / (2 width^2))``: ``Sub``, ``Mul``, ``Mul``, ``Exp``."""
    def nodes(g: Graph, x: str) -> str:
        c = g.const("centers", np.asarray(centers, np.float32).reshape(1, -1))
        k = g.const("neg_inv_2w2", np.array(-0.5 / width**2, np.float32))
        diff = g.op("Sub", [x, c], "diff")
        return g.op("Exp", [g.op("Mul", [g.op("Mul", [diff, diff], "sq"), k], "scaled")], "features")
    return nodes


def chebyshev_features(degree: int, domain: tuple[float, float]) -> FeatureNodes:
    """``T_1 .. T_degree`` of ``x`` mapped from ``domain`` onto [-1, 1] (clipped), as
    ``cos(k * arccos t)``: ``Sub -> Mul -> Clip -> Acos -> Mul -> Cos``."""
    def nodes(g: Graph, x: str) -> str:
        lo, hi = domain
        a = g.op("Sub", [x, g.const("center", np.float32((lo + hi) / 2.0))], "shifted")
        a = g.op("Mul", [a, g.const("scale", np.float32(2.0 / (hi - lo)))], "t_raw")
        a = g.op("Clip", [a, g.const("minus_one", np.float32(-1.0)), g.const("one", np.float32(1.0))], "t")
        a = g.op("Acos", [a], "theta")
        a = g.op("Mul", [a, g.const("orders", np.arange(1, degree + 1, dtype=np.float32))], "k_theta")
        return g.op("Cos", [a], "features")
    return nodes


def export_linear_sweep(
    W: np.ndarray,
    b: np.ndarray,
    *,
    features: FeatureNodes | None = None,
    param_names: tuple[str, str] = ("W", "b"),
    params_first: bool = False,
    name: str = "linear_sweep",
    doc: str = "",
) -> GraphProto:
    """``K`` linear models side by side: ``y (N, K) = features(x) @ W + b`` (``MatMul``, ``Add``).

    ``W`` is ``(d, K)`` and ``b`` ``(K,)``. With ``features`` (``pow_features``,
    ``rbf_features``, ``chebyshev_features``) the input is one column ``x (N, 1)`` and the graph
    builds the ``d`` features; without, ``x`` is ``(N, d)`` used as is. ``param_names`` and
    ``params_first`` (store ``W`` and ``b`` before the feature constants) only fix names and
    initializer order, which are part of the saved model's bytes.
    """
    g = Graph()
    if params_first:
        w_name, b_name = g.const(param_names[0], W), g.const(param_names[1], b)
    a = "x" if features is None else features(g, "x")
    if not params_first:
        w_name, b_name = g.const(param_names[0], W), g.const(param_names[1], b)
    g.op("Add", [g.op("MatMul", [a, w_name], "matmul"), b_name], "y")
    d_in = W.shape[0] if features is None else 1
    return g.build(name, [_x_input(d_in)], [tensor("y", ["N", W.shape[1]])], doc)


def export_dropout(p: float, width: int, *, seed: int | None = None) -> GraphProto:
    """A lone ``Dropout`` node: ``y = Dropout(x, ratio=p, training_mode)``.

    ``training_mode`` is a required bool scalar input. With ``True`` ORT zeroes each value with
    probability ``p`` and scales the rest by ``1/(1-p)``; with ``False`` it passes ``x`` through.
    A fixed ``seed`` makes only the first training-mode run of a fresh session reproducible.
    """
    g = Graph()
    attrs = {} if seed is None else {"seed": int(seed)}
    g.op("Dropout", ["x", g.const("ratio", np.float32(p)), "training_mode"], "y", **attrs)
    inputs = [
        _x_input(width),
        tensor("training_mode", [], TensorProto.BOOL),
    ]
    out = tensor("y", ["N", width])
    return g.build("dropout", inputs, [out], f"Dropout(p={p})")
