"""Issue 16, part 2, "The model, live": a term page whose demo exported ONNX models gets a "Run it in
your browser" panel that, once opened (and only then), loads onnxruntime-web from the site, runs
every model on the inputs the build recorded beside it and says whether the outputs match the
build's; a model with 1-4 float features per row also gets sliders for one row."""

from __future__ import annotations

import json

import numpy as np
import pytest
from onnx import TensorProto, helper
from tools import ORT_WEB, require

from generator.demo.runtime import onnx as onnx_tools
from generator.publish import live

DEMO = '''\
import numpy as np
from onnx import TensorProto, helper, numpy_helper

def run(demo):
    demo.onnx("mlp", demo.make_model(mlp_graph()))
    demo.onnx("lookup", demo.make_model(lookup_graph()))
    demo.claim("two models were exported", True)

def mlp_graph():
    rng = np.random.default_rng(3)
    w = numpy_helper.from_array(rng.normal(size=(2, 3)).astype(np.float32), "w")
    v = numpy_helper.from_array(rng.normal(size=(3, 1)).astype(np.float32), "v")
    return helper.make_graph(
        [helper.make_node("MatMul", ["x", "w"], ["h"]), helper.make_node("Tanh", ["h"], ["t"]),
         helper.make_node("MatMul", ["t", "v"], ["y"])], "mlp",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 2])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["N", 1])], [w, v])

def lookup_graph():
    table = numpy_helper.from_array(np.arange(15, dtype=np.float32).reshape(5, 3) / 7, "table")
    return helper.make_graph(
        [helper.make_node("Gather", ["table", "tokens"], ["rows"]),
         helper.make_node("Softmax", ["rows"], ["p"], axis=-1)], "lookup",
        [helper.make_tensor_value_info("tokens", TensorProto.INT64, ["N", "T"])],
        [helper.make_tensor_value_info("p", TensorProto.FLOAT, ["N", "T", 3])], [table])
'''


def _model(nodes, inputs, outputs, initializers=()):
    return onnx_tools.make_model(helper.make_graph(nodes, "g", inputs, outputs, list(initializers))
                                 ).SerializeToString()


def _mixed_model() -> bytes:
    """A float tensor, a float scalar, integer indices into a 6-row table and a boolean."""
    table = helper.make_tensor("table", TensorProto.FLOAT, [6, 2], [float(i) for i in range(12)])
    return _model(
        [helper.make_node("Gather", ["table", "idx"], ["g"]), helper.make_node("Div", ["x", "t"], ["d"]),
         helper.make_node("Add", ["d", "g"], ["y"]), helper.make_node("Not", ["flag"], ["nf"])],
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 2]),
         helper.make_tensor_value_info("t", TensorProto.FLOAT, []),
         helper.make_tensor_value_info("idx", TensorProto.INT64, ["N"]),
         helper.make_tensor_value_info("flag", TensorProto.BOOL, [])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["N", 2]),
         helper.make_tensor_value_info("nf", TensorProto.BOOL, [])], [table])


def _array(t: dict) -> np.ndarray:
    return np.array([float(v) if isinstance(v, str) else v for v in t["data"]], t["type"]).reshape(t["shape"])


def test_recorded_inputs_follow_the_signature_deterministically():
    model = _mixed_model()
    inputs = live.recorded_inputs(model)
    assert {k: (v.dtype.name, v.shape) for k, v in inputs.items()} == {
        "x": ("float32", (4, 2)), "t": ("float32", ()), "idx": ("int64", (4,)), "flag": ("bool", ())}
    assert 0.5 <= float(inputs["t"]) <= 1.5  # a scalar divides: never near 0
    assert inputs["idx"].min() >= 0 and inputs["idx"].max() < 6  # within the table it indexes
    assert not inputs["flag"]
    again = live.recorded_inputs(model)
    assert all(np.array_equal(inputs[k], again[k]) for k in inputs)
    assert live.signature(model) == {"x": [None, 2], "t": [], "idx": [None], "flag": []}


def test_the_recorded_run_is_byte_stable_and_its_outputs_are_onnx_runtimes():
    model = _mixed_model()
    data = live.record("mixed.onnx", model)
    assert data == live.record("mixed.onnx", model) and data.endswith(b"\n")
    rec = json.loads(data)
    assert rec["atol"] == rec["rtol"] == 1e-5 and rec["model"] == "mixed.onnx"
    feeds = {t["name"]: _array(t) for t in rec["inputs"]}
    assert all(np.array_equal(feeds[k], v) for k, v in live.recorded_inputs(model).items())
    got = onnx_tools.session(model).run(None, feeds)
    assert [t["name"] for t in rec["outputs"]] == ["y", "nf"]
    for t, array in zip(rec["outputs"], got, strict=True):
        assert np.array_equal(_array(t), array), t["name"]  # exactly: float32 values round-trip


def test_an_ill_conditioned_output_records_its_rounding_noise():
    """y = 1e4·x − 1e4·x + x: a one-step nudge of x moves the two large terms by far more than y."""
    big = helper.make_tensor("big", TensorProto.FLOAT, [], [1e4])
    model = _model([helper.make_node("Mul", ["x", "big"], ["a"]), helper.make_node("Sub", ["a", "a"], ["z"]),
                    helper.make_node("Add", ["z", "x"], ["y"]), helper.make_node("Mul", ["a", "big"], ["w"])],
                   [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 1])],
                   [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["N", 1]),
                    helper.make_tensor_value_info("w", TensorProto.FLOAT, ["N", 1])], [big])
    noise = {t["name"]: t["noise"] for t in json.loads(live.record("m.onnx", model))["outputs"]}
    assert 0 < noise["y"] < 1e-6 and noise["w"] > 1e-5


def test_a_model_onnx_runtime_cannot_run_is_recorded_as_an_error():
    rec = json.loads(live.record("broken.onnx", b"not a model"))
    assert set(rec) == {"model", "error"} and rec["error"]


def test_recorded_runs_are_cached_by_the_models_bytes(tmp_path, monkeypatch):
    model = _mixed_model()
    first = live.cached_record("m.onnx", model, tmp_path)
    assert len(list((tmp_path / live.CACHE_FOLDER).rglob("*.json"))) == 1
    monkeypatch.setattr(live, "record", lambda *a: pytest.fail("recorded again although cached"))
    assert live.cached_record("m.onnx", model, tmp_path) == first


@pytest.fixture(scope="module")
def live_site(tmp_path_factory):
    from conftest import CATEGORIES, Project

    require(ORT_WEB.is_dir(), "npm package onnxruntime-web")
    project = Project(tmp_path_factory.mktemp("live"))
    project.write("glossary/_categories.yaml", CATEGORIES)
    project.write("demos/tiny_models.py", DEMO)
    project.term("tiny-net", demo="tiny_models")
    project.term("plain-term")
    project.build(strict=True, onnxruntime_web=str(ORT_WEB))
    return project


def test_the_page_has_a_closed_panel_and_the_site_the_recorded_runs(live_site):
    page = live_site.html("terms/tiny-net/index.html")
    assert '<details class="termlab-live tip" data-search-exclude>' in page
    assert '<li data-model="mlp.onnx"><code>mlp.onnx</code>: ' in page
    assert "ort.wasm" not in page and "/ort/" not in page
    assert "termlab-live" not in live_site.html("terms/plain-term/index.html").split("<script")[0]
    site = live_site.root / "site"
    for name in live.ORT_FILES:
        assert (site / live.ORT_ASSETS / name).read_bytes() == (ORT_WEB / name).read_bytes()
    for model in ("mlp.onnx", "lookup.onnx"):
        recorded = (site / "terms/tiny-net" / f"{model}.json").read_bytes()
        assert recorded == live.record(model, (site / "terms/tiny-net" / model).read_bytes())


def test_without_onnxruntime_web_no_panel_and_one_line_saying_how_to_install_it(project, caplog_mkdocs):
    from mkdocs.exceptions import Abort

    project.write("demos/tiny_models.py", DEMO)
    project.term("tiny-net", demo="tiny_models")
    project.build(strict=True, onnxruntime_web="nowhere")  # not asked for: no warning
    assert "termlab-live" not in project.html("terms/tiny-net/index.html").split("<script")[0]
    assert not (project.root / "site" / live.ORT_ASSETS).exists()
    said = [r for r in caplog_mkdocs.records if r.name == "mkdocs.plugins.termlab"
            and "onnxruntime-web not found" in r.getMessage()]
    assert len(said) == 1 and said[0].levelname == "INFO" and live.ORT_INSTALL in said[0].getMessage()
    with pytest.raises(Abort):
        project.build(strict=True, onnxruntime_web="nowhere", live_models="require")


@pytest.mark.browser
@pytest.mark.parametrize("width,scheme", [(1280, "light"), (390, "dark")])
def test_the_panel_runs_the_models_only_when_opened_and_the_sliders_rerun_them(live_site, browser, width,
                                                                                  scheme):
    from tools import ARTIFACTS, site_page

    with site_page(browser, live_site.root / "site", width, scheme) as (page, base):
        requested: list[str] = []
        page.on("request", lambda r: requested.append(r.url))
        page.goto(base + "terms/tiny-net/", wait_until="load")
        page.wait_for_timeout(300)
        assert not [u for u in requested if u.endswith(".wasm") or "/ort/" in u or ".onnx" in u], requested
        panel = page.locator("details.termlab-live")
        panel.locator("summary").click()
        page.locator("details.termlab-live[data-done]").wait_for(timeout=60_000)
        assert panel.get_attribute("data-done") == "match", panel.inner_text()
        results = panel.locator("[data-model]")
        assert results.count() == 2
        for i in range(2):
            assert results.nth(i).get_attribute("data-state") == "match"
            assert "matches the build (largest difference" in results.nth(i).inner_text()
        assert any(u.endswith(".wasm") for u in requested)
        slider = panel.get_by_label("x, feature 1")
        assert slider.count() == 1 and panel.locator("input[type=range]").count() == 2  # mlp: 2 features
        out = panel.locator(".termlab-live-out")
        out.filter(has_text="y = ").wait_for()
        before, shown = out.inner_text(), panel.locator("output").first.inner_text()
        slider.focus()
        for _ in range(20):
            page.keyboard.press("ArrowRight")
        page.wait_for_function("(b) => document.querySelector('.termlab-live-out').textContent !== b", arg=before)
        assert panel.locator("output").first.inner_text() != shown
        page.screenshot(path=str(ARTIFACTS / f"live-models-{width}-{scheme}.png"), full_page=True)
        assert not page.errors, page.errors


@pytest.mark.browser
def test_every_model_of_the_real_site_matches_the_build_in_the_browser(page, base_url, real_site):
    pages = sorted({p.parent.name for p in (real_site / "terms").glob("*/*.onnx.json")})
    models = sorted(p.name for p in (real_site / "terms").glob("*/*.onnx.json"))
    assert len(pages) >= 30 and len(models) >= 45
    reports = {}
    for tid in pages:
        page.goto(f"{base_url}terms/{tid}/", wait_until="load")
        page.locator("details.termlab-live summary").click()
        page.locator("details.termlab-live[data-done]").wait_for(timeout=60_000)
        for item in page.locator("details.termlab-live [data-model]").all():
            reports[f"{tid}/{item.get_attribute('data-model')}"] = (item.get_attribute("data-state"),
                                                                    item.inner_text())
    assert len(reports) == len(models)
    bad = {k: text for k, (state, text) in reports.items() if state != "match"}
    assert bad == {}, bad
    assert not page.errors, page.errors
