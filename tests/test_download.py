"""A demo's download runs on its own: unzipped into an empty folder, `python <demo>.py` with the
test's Python (no path to this repository) draws the figures, writes the models and prints each
finding and check, with the same bytes the site publishes."""

from __future__ import annotations

import html.parser
import io
import json
import os
import subprocess
import sys
import zipfile
from pathlib import Path

from conftest import entry

from generator.demo import bundle

HELPER_INIT = "from mylib import shapes\n"
HELPER = "def width():\n    return 3\n"
DEMO = '''\
import numpy as np
from onnx import TensorProto, helper
from mylib import shapes
from mylib.scale import double

def run(demo):
    n = int(demo.options.get("n", 8))
    x = demo.rng.normal(size=(n, shapes.width())).astype(np.float32)
    graph = helper.make_graph(
        [helper.make_node("Relu", ["x"], ["y"])], "relu",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [None, shapes.width()])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [None, shapes.width()])])
    y = demo.onnx("relu", demo.make_model(graph)).run(None, {"x": x})[0]

    @demo.figure("relu", caption="ReLU of random inputs", alt="x against relu(x)")
    def _(fig):
        fig.subplots().plot(x.ravel(), y.ravel(), "o")

    demo.setting("rows", n, label="Rows")
    demo.metric("mean_out", float(y.mean()), label="Mean output")
    demo.claim("ReLU never lowers an input", bool((y >= x).all()), rows=n)
    demo.check("ORT's Relu matches NumPy", bool(np.allclose(y, np.maximum(x, 0))))
    demo.claim("the mean is below the bar", double(float(y.mean())) < demo.options.get("bar", 100))
'''


class _Links(html.parser.HTMLParser):
    """Every <a> of a page: its attributes and text."""

    def __init__(self) -> None:
        super().__init__()
        self.links: list[dict[str, str]] = []
        self._open: dict[str, str] | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "a":
            self._open = {k: v or "" for k, v in attrs} | {"text": ""}
            self.links.append(self._open)

    def handle_endtag(self, tag: str) -> None:
        if tag == "a":
            self._open = None

    def handle_data(self, data: str) -> None:
        if self._open is not None:
            self._open["text"] += data


def links(page: str) -> dict[str, dict[str, str]]:
    parser = _Links()
    parser.feed(page)
    return {a["href"]: a for a in parser.links if "href" in a}


def write_demo(project) -> None:
    project.write("demos/mylib/__init__.py", HELPER_INIT)
    project.write("demos/mylib/shapes.py", HELPER)
    project.write("demos/mylib/scale.py", "def double(v):\n    return 2 * v\n")
    project.write("demos/mylib/unused.py", "raise ImportError('not needed by the demo')\n")
    project.write("demos/relu.py", DEMO)


def run_download(data: bytes, folder: Path, name: str) -> subprocess.CompletedProcess:
    """Unzip into an empty folder and run `python <name>.py` there, as a reader would."""
    folder.mkdir()
    zipfile.ZipFile(io.BytesIO(data)).extractall(folder)
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "TERMLAB_CACHE_DIR")}
    return subprocess.run([sys.executable, f"{name}.py"], cwd=folder / name, env=env,
                          capture_output=True, text=True, timeout=300)


def test_the_zip_runs_alone_with_the_pages_options_and_bytes(project, tmp_path):
    write_demo(project)
    project.write("glossary/relu.yaml", entry("ReLU") + "demo: {name: relu, n: 5}\n")
    site = project.build()
    page = (site / "terms/relu/index.html").read_text("utf-8")
    found = links(page)
    assert found["relu.zip"]["download"] == "relu.zip"
    assert found["relu.py"]["download"] == "relu.py"
    assert found["relu.onnx"]["download"] == "relu.onnx"
    assert "pip install numpy onnx onnxruntime matplotlib" in page
    assert "cd relu &amp;&amp; python relu.py" in page or "cd relu && python relu.py" in page
    data = (site / "terms/relu/relu.zip").read_bytes()

    names = zipfile.ZipFile(io.BytesIO(data)).namelist()
    assert names == sorted(names)
    assert {"relu/relu.py", "relu/mylib/__init__.py", "relu/mylib/shapes.py", "relu/mylib/scale.py",
            "relu/termlab_runtime/context.py", "relu/termlab_runtime/standalone.py",
            "relu/README.txt"} <= set(names)
    assert "relu/mylib/unused.py" not in names  # only what the demo imports
    assert all(i.date_time == bundle.EPOCH for i in zipfile.ZipFile(io.BytesIO(data)).infolist())

    done = run_download(data, tmp_path / "empty", "relu")
    assert done.returncode == 0, done.stderr
    out = tmp_path / "empty/relu/output"
    for name in ("relu-light.svg", "relu-dark.svg", "relu.onnx"):
        assert (out / name).read_bytes() == (site / "terms/relu" / name).read_bytes(), name
    assert "[held] finding: ReLU never lowers an input (rows = 5)" in done.stdout
    assert "[held] check: ORT's Relu matches NumPy" in done.stdout
    assert "Rows: 5" in done.stdout
    published = project.json("terms.json")
    metrics = next(t for t in published["terms"] if t["id"] == "relu")["demo"]["metrics"]
    ran = json.loads((out / "outputs.json").read_text())["metrics"]
    assert [(m["name"], m["value"]) for m in ran] == [(m["name"], m["value"]) for m in metrics]


def test_the_zip_has_the_same_bytes_every_time(project, tmp_path):
    write_demo(project)
    project.write("glossary/relu.yaml", entry("ReLU") + "demo: relu\n")
    first = (project.build() / "terms/relu/relu.zip").read_bytes()
    for path in project.demos.rglob("*.py"):  # other timestamps, same contents
        os.utime(path, (1_000_000_000, 1_000_000_000))
    for cached in (project.root / ".cache").rglob("download-*.zip"):
        cached.unlink()  # made again, not read back from the cache
    again = (project.build() / "terms/relu/relu.zip").read_bytes()
    assert again == first
    assert list((project.root / ".cache").rglob("download-*.zip"))  # kept for the next build
    fresh = bundle.zip_bytes("relu", project.demos / "relu.py", project.demos, {})
    assert fresh == first


def test_a_failed_finding_fails_the_run(project, tmp_path):
    write_demo(project)
    data = bundle.zip_bytes("relu", project.demos / "relu.py", project.demos, {"bar": -100})
    done = run_download(data, tmp_path / "empty", "relu")
    assert done.returncode == 1
    assert "[FAILED] finding: the mean is below the bar" in done.stdout
    assert "[held] finding: ReLU never lowers an input" in done.stdout


def test_a_failed_demo_offers_no_download(project):
    project.write("demos/broken.py", "def run(demo):\n    raise ValueError('boom')\n")
    project.write("glossary/x.yaml", entry("X") + "demo: broken\n")
    site = project.build(strict=False)
    assert not (site / "terms/x/broken.zip").exists()
    assert "broken.zip" not in links((site / "terms/x/index.html").read_text("utf-8"))
