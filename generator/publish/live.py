""""Run it in your browser": each exported ONNX model's recorded run (deterministic inputs made
from its input signature, and the outputs Python's ONNX Runtime gives for them), published as
``<model>.json`` beside the model, so a page can run the same inputs in onnxruntime-web and say
whether they match the build; and onnxruntime-web's WASM-only files, found in a project's npm
folders and copied into the site.

The recorded runs are cached by the model's bytes (and the recording's own version and the
installed onnxruntime's), outside the demo cache: nothing here changes a demo's cache key."""

from __future__ import annotations

import hashlib
import json
import logging
import math
import os
from collections.abc import Mapping
from importlib import metadata
from pathlib import Path
from typing import Any

from ..demo.runtime import onnx as onnx_tools

log = logging.getLogger("termlab.live")

RECORD_VERSION = 2  # bump when the inputs or the file's layout change: cached records are remade
SIZE = 4  # a symbolic or unknown dimension's size in the recorded inputs
SEED = 0  # NumPy's generator for the float inputs
ATOL = RTOL = 1e-5  # the page's "matches the build": numpy.allclose(atol=ATOL, rtol=RTOL)
INT_HIGH = 2  # integer inputs: 0..INT_HIGH-1, unless the input indexes a table (Gather) of known size
CACHE_FOLDER = "live-v1"
# onnxruntime-web's WASM-only build with its glue bundled, and its WebAssembly: all a page loads.
ORT_FILES = ("ort.wasm.bundle.min.mjs", "ort-wasm-simd-threaded.wasm")
ORT_ASSETS = "assets/termlab/ort"  # where the site gets them (site-relative)
ORT_INSTALL = "npm install --prefix .termlab-tools onnxruntime-web@1"


def record_name(model: str) -> str:
    """The recorded run's file name beside ``model``."""
    return f"{model}.json"


def find_ort_web(root: Path, given: str, search: tuple[str, ...]) -> Path | None:
    """onnxruntime-web's ``dist`` folder: ``given`` (relative to ``root``) if set, else the first
    of ``search`` that holds ``ORT_FILES``; None if none does."""
    for folder in ([given] if given else search):
        path = root / folder
        if all((path / name).is_file() for name in ORT_FILES):
            return path
    return None


def ort_assets(dist: Path) -> dict[str, bytes]:
    """onnxruntime-web's files for the site, by site-relative path."""
    return {f"{ORT_ASSETS}/{name}": (dist / name).read_bytes() for name in ORT_FILES}


def ort_size(dist: Path) -> int:
    """What a reader downloads on opening the panel, in bytes (uncompressed)."""
    return sum((dist / name).stat().st_size for name in ORT_FILES)


def _dims(value_info: Any) -> list[int]:
    return [d.dim_value if d.HasField("dim_value") and d.dim_value > 0 else SIZE
            for d in value_info.type.tensor_type.shape.dim]


def _index_bounds(graph: Any) -> dict[str, int]:
    """Graph inputs that index a constant table (Gather's indices): the table's size on that axis."""
    tables = {t.name: list(t.dims) for t in graph.initializer}
    bounds: dict[str, int] = {}
    for node in graph.node:
        if node.op_type == "Gather" and len(node.input) > 1 and node.input[0] in tables:
            axis = next((a.i for a in node.attribute if a.name == "axis"), 0)
            size = tables[node.input[0]][axis]
            bounds[node.input[1]] = min(bounds.get(node.input[1], size), size)
    return bounds


def signature(model_bytes: bytes) -> dict[str, list[int | None]]:
    """Each graph input's dimensions, None where symbolic or unknown (the page offers sliders for
    a row of an input whose last dimension is fixed and small)."""
    import onnx

    graph = onnx.load_from_string(model_bytes).graph
    constant = {t.name for t in graph.initializer}
    return {v.name: [d.dim_value if d.HasField("dim_value") and d.dim_value > 0 else None
                     for d in v.type.tensor_type.shape.dim] for v in graph.input if v.name not in constant}


def recorded_inputs(model_bytes: bytes) -> dict[str, Any]:
    """Deterministic inputs for the model's graph inputs, by name: symbolic dimensions are ``SIZE``;
    float tensors are standard normal and float scalars uniform in [0.5, 1.5] (a scale or a
    temperature, never near 0), from a NumPy generator seeded with ``SEED``; integers are small
    non-negative ones, within the table an input indexes; booleans are false (e.g. dropout's
    training mode off, so the run is deterministic)."""
    import numpy as np
    import onnx
    from onnx import helper

    graph = onnx.load_from_string(model_bytes).graph
    constant = {t.name for t in graph.initializer}
    bounds = _index_bounds(graph)
    rng = np.random.default_rng(SEED)
    inputs: dict[str, Any] = {}
    for value in graph.input:
        if value.name in constant:
            continue
        dtype = np.dtype(helper.tensor_dtype_to_np_dtype(value.type.tensor_type.elem_type))
        shape = _dims(value)
        if dtype.kind == "f":
            drawn = rng.uniform(0.5, 1.5, shape) if not shape else rng.standard_normal(shape)
            inputs[value.name] = drawn.astype(dtype)
        elif dtype.kind in "iu":
            inputs[value.name] = rng.integers(0, max(1, bounds.get(value.name, INT_HIGH)), shape).astype(dtype)
        elif dtype.kind == "b":
            inputs[value.name] = np.zeros(shape, dtype)
        else:
            raise ValueError(f"input {value.name!r} has type {dtype}, which a page cannot make")
    return inputs


def _tensor(name: str, array: Any) -> dict[str, Any]:
    """A tensor as JSON: its values flat, float32 ones as the shortest decimals that read back as
    the same float32, and non-finite floats as the strings JavaScript's ``Number()`` reads."""
    flat = array.reshape(-1).tolist()
    if array.dtype == "float32":
        flat = [float(str(v)) for v in array.reshape(-1)]
    if array.dtype.kind == "f":
        flat = [v if math.isfinite(v) else ("NaN" if math.isnan(v) else ("Infinity" if v > 0 else "-Infinity"))
                for v in flat]
    elif array.dtype.kind == "b":
        flat = [int(v) for v in flat]
    return {"name": name, "type": str(array.dtype), "shape": list(array.shape), "data": flat}


def rounding_noise(session: Any, inputs: dict[str, Any], outputs: dict[str, Any]) -> dict[str, float]:
    """How far each float output moves when every float input moves by one step of its type (up,
    then down): the rounding noise of the model itself. An ill-conditioned model (large weights
    that cancel, say) moves by more than ``ATOL`` there, and another runtime's rounding (its exp,
    its summation order) can too; the page allows this much on top of the tolerance, and says so."""
    import numpy as np

    names = list(outputs)
    noise = {n: 0.0 for n, a in outputs.items() if a.dtype.kind == "f"}
    for way in (np.inf, -np.inf):
        nudged = {k: np.asarray(np.nextafter(v, np.asarray(way, v.dtype)), v.dtype) if v.dtype.kind == "f" else v
                  for k, v in inputs.items()}
        for n, moved in zip(names, session.run(names, nudged), strict=True):
            if n in noise and moved.shape == outputs[n].shape:
                change = np.abs(moved.astype(np.float64) - outputs[n].astype(np.float64))
                finite = change[np.isfinite(change)]
                noise[n] = max(noise[n], float(finite.max()) if finite.size else 0.0)
    return noise


def record(model: str, model_bytes: bytes) -> bytes:
    """The recorded run of ``model`` as JSON bytes (the same model gives the same bytes)."""
    try:
        inputs = recorded_inputs(model_bytes)
        dims = signature(model_bytes)
        session = onnx_tools.session(model_bytes)
        names = [o.name for o in session.get_outputs()]
        outputs = dict(zip(names, session.run(names, inputs), strict=True))
        noise = rounding_noise(session, inputs, outputs)
        data = {"model": model, "atol": ATOL, "rtol": RTOL,
                "inputs": [{**_tensor(n, a), "dims": dims[n]} for n, a in inputs.items()],
                "outputs": [{**_tensor(n, a), **({"noise": noise[n]} if n in noise else {})}
                            for n, a in outputs.items()]}
    except Exception as exc:  # a model ONNX Runtime cannot run: the page says so
        data = {"model": model, "error": f"{type(exc).__name__}: {exc}".splitlines()[0][:300]}
    return (json.dumps(data, sort_keys=True, separators=(",", ":"), allow_nan=False) + "\n").encode()


def _key(model_bytes: bytes) -> str:
    try:
        runtime = metadata.version("onnxruntime")
    except metadata.PackageNotFoundError:
        runtime = "none"
    salt = f"termlab-live {RECORD_VERSION} {SEED} {SIZE} {INT_HIGH} onnxruntime {runtime}\n".encode()
    return hashlib.sha256(salt + model_bytes).hexdigest()


def _cache_path(model: str, model_bytes: bytes, cache_dir: Path) -> Path:
    key = _key(model_bytes + b"\0" + model.encode())
    return cache_dir / CACHE_FOLDER / key[:2] / f"{key}.json"


def kept_record(model: str, model_bytes: bytes, cache_dir: Path | None) -> bytes | None:
    """The record kept in the cache folder, if there is one."""
    if cache_dir is None:
        return None
    try:
        return _cache_path(model, model_bytes, cache_dir).read_bytes()
    except OSError:
        return None


def cached_record(model: str, model_bytes: bytes, cache_dir: Path | None) -> bytes:
    """``record``, kept in ``cache_dir/live-v1`` by the model's bytes hash (warm builds read it)."""
    kept = kept_record(model, model_bytes, cache_dir)
    if kept is not None or cache_dir is None:
        return kept if kept is not None else record(model, model_bytes)
    data = record(model, model_bytes)
    path = _cache_path(model, model_bytes, cache_dir)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        scratch = path.with_name(f".{path.name}.{os.getpid()}")
        scratch.write_bytes(data)
        os.replace(scratch, path)
    except OSError as exc:  # a read-only cache: the record is still published
        log.debug(f"could not cache the recorded run of {model} in {path}: {exc}")
    return data


def recorded_files(models: list[str], files: Mapping[str, bytes], cache_dir: Path | None) -> dict[str, bytes]:
    """Each model's recorded run, by its file name (``record_name``)."""
    return {record_name(m): cached_record(m, files[m], cache_dir) for m in models if m in files}


class Recorder:
    """Recorded runs not in the cache folder yet (a fresh folder: every one) are made in a forked
    process, so that importing ONNX Runtime and running the models happen on the second core while
    the build renders pages. ``start`` as soon as a term's result is in; ``files`` waits."""

    def __init__(self, cache_dir: Path | None):
        self.cache_dir = cache_dir
        self._pool: Any = None
        self._records: dict[tuple[str, bytes], Any] = {}  # bytes, or a future of them

    def start(self, models: list[str], files: Mapping[str, bytes]) -> None:
        for model in models:
            if model not in files or (model, files[model]) in self._records:
                continue
            kept = kept_record(model, files[model], self.cache_dir)
            if kept is None:
                if self._pool is None:
                    import multiprocessing
                    from concurrent.futures import ProcessPoolExecutor

                    self._pool = ProcessPoolExecutor(1, mp_context=multiprocessing.get_context("fork"))
                kept = self._pool.submit(cached_record, model, files[model], self.cache_dir)
            self._records[(model, files[model])] = kept

    def files(self, models: list[str], files: Mapping[str, bytes]) -> dict[str, bytes]:
        self.start(models, files)
        out = {}
        for model in models:
            if model in files:
                found = self._records[(model, files[model])]
                out[record_name(model)] = found if isinstance(found, bytes) else found.result()
        return out

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=False, cancel_futures=True)
