"""Demo engine: every failure kind, the cache, and a kill in the middle of a build."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from conftest import entry
from mkdocs.exceptions import Abort

from generator.demo.engine import DemoEngine
from generator.model import DemoSpec

GOOD = '''
import numpy as np
from onnx import TensorProto, helper
from helpers.shapes import width

def run(demo):
    x = demo.rng.normal(size=(8, width())).astype(np.float32)
    graph = helper.make_graph(
        [helper.make_node("Relu", ["x"], ["y"])], "relu",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [None, width()])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [None, width()])])
    y = demo.onnx("relu", demo.make_model(graph)).run(None, {"x": x})[0]

    @demo.figure("relu", caption="ReLU of random inputs", alt="Scatter of x against relu(x)")
    def _(fig):
        ax = fig.subplots()
        ax.plot(x.ravel(), y.ravel(), "o")

    demo.metric("max_abs_diff", float(np.abs(y - np.maximum(x, 0)).max()), fmt=".1e")
    demo.claim("ORT's Relu matches NumPy", bool(np.allclose(y, np.maximum(x, 0))),
               n=demo.number(x.size, "values compared"))
'''

BAD = {
    "raises": ("def run(demo):\n    raise ValueError('boom')\n", "demos/raises.py", 2, "boom"),
    "exits": ("import sys\ndef run(demo):\n    sys.exit(3)\n", "demos/exits.py", 3,
              "demo called sys.exit(3); return from run() instead"),
    "aborts": ("import os\ndef run(demo):\n    os.abort()\n", "demos/aborts.py", 3,
               "the demo process aborted (SIGABRT"),
    "segfaults": ("import ctypes\ndef run(demo):\n    ctypes.string_at(0)\n", "demos/segfaults.py", 3,
                  "crashed with a segmentation fault (SIGSEGV)"),
    "hangs": ("import time\ndef run(demo):\n    time.sleep(60)\n", "demos/hangs.py", 3,
              "timed out after 2 s and was killed"),
    "hogs": ("import numpy as np\ndef run(demo):\n    np.ones(1 << 40, dtype=np.uint8)\n",
             "demos/hogs.py", 3, "demo ran out of memory (limit 512 MB)"),
    "syntax": ("def run(demo)\n    pass\n", "demos/syntax.py", 1, "syntax error: expected ':'"),
    "norun": ("x = 1\n", "demos/norun.py", 1, "norun.py defines no run(demo) function"),
    "nan": ("def run(demo):\n    demo.metric('loss', float('nan'))\n", "demos/nan.py", 2,
            "metric 'loss' is nan; a metric must be a finite number"),
}


@pytest.fixture
def demos(project):
    project.write("demos/helpers/__init__.py", "")
    project.write("demos/helpers/shapes.py", "def width():\n    return 3\n")
    project.write("demos/good.py", GOOD)
    return project


def run_all(project, names, timeout=30.0, force=False, jobs=2):
    engine = DemoEngine(project.root / ".cache", jobs)
    try:
        specs = {n: DemoSpec(n, project.demos / f"{n}.py", {}, 2.0 if n == "hangs" else None)
                 for n in names}
        return engine.run(specs, project.demos, timeout=timeout, memory_mb=512, force=force)
    finally:
        engine.close()


def test_good_demo_runs_end_to_end(demos):
    (result,) = run_all(demos, ["good"]).values()
    assert result.error is None and not result.cached
    assert [c.holds for c in result.claims] == [True]
    assert result.metrics[0].name == "max_abs_diff"
    assert set(result.files) == {"good.py", "relu-light.svg", "relu-dark.svg", "relu.onnx", "good.zip"}
    assert result.download == "good.zip"
    light, dark = result.files["relu-light.svg"], result.files["relu-dark.svg"]
    assert light != dark and b"<svg" in light
    assert b"Date" not in light  # no timestamps: byte-identical rebuilds


def test_every_failure_kind_is_reported_and_others_still_run(demos):
    for name, (code, *_rest) in BAD.items():
        demos.write(f"demos/{name}.py", code)
    results = run_all(demos, ["good", *BAD])
    assert results["good"].error is None
    for name, (_, file, line, message) in BAD.items():
        r = results[name]
        assert r.error and message in r.error, (name, r.error)
        assert (r.error_file, r.error_line) == (file, line), name


def test_flooded_output_is_truncated(demos):
    demos.write("demos/floods.py", "def run(demo):\n    for _ in range(200000):\n"
                "        print('spam ' * 20)\n")
    (r,) = run_all(demos, ["floods"]).values()
    assert r.error is None
    assert len(r.output) < 25_000 and "more characters of output dropped" in r.output


def test_demo_runs_in_a_scratch_directory_with_a_scrubbed_environment(demos, monkeypatch):
    monkeypatch.setenv("TERMLAB_SECRET_TOKEN", "hunter2")
    demos.write("demos/env.py", "import os, tempfile\ndef run(demo):\n"
                "    open('scratch.txt', 'w').write('x')\n"
                "    with tempfile.TemporaryDirectory() as tmp:\n"
                "        open(os.path.join(tmp, 't.txt'), 'w').write('x')\n"
                "    demo.claim('no secret', 'TERMLAB_SECRET_TOKEN' not in os.environ)\n"
                "    demo.claim('one BLAS thread', os.environ.get('OPENBLAS_NUM_THREADS') == '1')\n")
    (r,) = run_all(demos, ["env"]).values()
    assert [c.holds for c in r.claims] == [True, True]
    assert not (demos.root / "scratch.txt").exists() and not (demos.demos / "scratch.txt").exists()


def test_global_random_generators_are_seeded_so_reruns_give_the_same_numbers(demos):
    demos.write("demos/draws.py", "import random\nimport numpy as np\ndef run(demo):\n"
                "    demo.metric('numpy_global', np.random.rand())\n"
                "    demo.metric('python_global', random.random())\n")
    first = run_all(demos, ["draws"])["draws"]
    again = run_all(demos, ["draws"], force=True)["draws"]  # a new worker process
    assert not again.cached
    assert [m.value for m in first.metrics] == [m.value for m in again.metrics]


def test_demos_start_longest_first_by_the_last_builds_timings(demos):
    for name in ("quick", "slow", "middling", "new"):
        demos.write(f"demos/{name}.py", "def run(demo):\n    pass\n")
    (demos.root / ".cache").mkdir()
    (demos.root / ".cache" / "build-report.json").write_text(json.dumps(
        {"quick": {"seconds": 0.1}, "slow": {"seconds": 3.0}, "middling": {"seconds": 1.0}}))
    finished = list(run_all(demos, ["quick", "slow", "middling", "new"], jobs=1))
    assert finished == ["new", "slow", "middling", "quick"]  # never timed: could be the longest


def test_cache_hits_and_helper_edits_rerun_exactly_the_importers(demos):
    demos.write("demos/plain.py", "def run(demo):\n    demo.metric('one', 1)\n")
    first = run_all(demos, ["good", "plain"])
    assert not first["good"].cached and not first["plain"].cached
    again = run_all(demos, ["good", "plain"])
    assert again["good"].cached and again["plain"].cached
    demos.write("demos/helpers/shapes.py", "def width():\n    return 4\n")
    after = run_all(demos, ["good", "plain"])
    assert not after["good"].cached and after["plain"].cached
    assert run_all(demos, ["plain"], force=True)["plain"].cached is False


def test_a_kept_engine_works_out_keys_again_only_when_a_file_under_demos_changes(demos, monkeypatch):
    """`mkdocs serve` keeps one engine: a rebuild with no demo or helper written computes no
    key again; a helper edited to the same size still reruns exactly its importer."""
    from generator.demo import engine as engine_module

    keyed: list[str] = []
    real = engine_module.demo_key
    monkeypatch.setattr(engine_module, "demo_key", lambda *a, **k: keyed.append(a[2]) or real(*a, **k))
    demos.write("demos/plain.py", "def run(demo):\n    demo.metric('one', 1)\n")
    engine = DemoEngine(demos.root / ".cache", 2)
    specs = {n: DemoSpec(n, demos.demos / f"{n}.py", {}, None) for n in ("good", "plain")}
    try:
        first = engine.run(specs, demos.demos, timeout=30, memory_mb=512)
        again = engine.run(specs, demos.demos, timeout=30, memory_mb=512)
        assert sorted(keyed) == ["good", "plain"]  # the second build reused both keys
        assert not first["good"].cached and again["good"].cached and again["plain"].cached
        read = []
        monkeypatch.setattr(engine_module.DemoResult, "from_entry", lambda *a, **k: read.append(a))
        third = engine.run(specs, demos.demos, timeout=30, memory_mb=512)
        assert read == [] and third == again  # nor read the cache entries again
        monkeypatch.undo()
        monkeypatch.setattr(engine_module, "demo_key", lambda *a, **k: keyed.append(a[2]) or real(*a, **k))
        demos.write("demos/helpers/shapes.py", "def width():\n    return 4\n")  # same size
        after = engine.run(specs, demos.demos, timeout=30, memory_mb=512)
        assert sorted(keyed) == ["good", "good", "plain", "plain"]
        assert not after["good"].cached and after["plain"].cached
        assert after["good"].files["relu.onnx"] != first["good"].files["relu.onnx"]  # the new width
    finally:
        engine.close()


def test_failures_are_remembered_until_inputs_change(demos):
    demos.write("demos/raises.py", BAD["raises"][0])
    assert not run_all(demos, ["raises"])["raises"].cached
    remembered = run_all(demos, ["raises"])["raises"]
    assert remembered.cached and "boom" in remembered.error
    demos.write("demos/raises.py", "def run(demo):\n    demo.metric('fixed', 1)\n")
    fixed = run_all(demos, ["raises"])["raises"]
    assert fixed.error is None and not fixed.cached


def test_kill_mid_build_leaves_no_torn_entry(demos):
    demos.write("demos/slow.py", "import time\ndef run(demo):\n    time.sleep(1.5)\n"
                "    demo.metric('done', 1)\n")
    demos.write("glossary/slow.yaml", entry("Slow") + "demo: slow\n")
    cmd = [sys.executable, "-m", "generator", "--root", str(demos.root), "demos",
           "--out", str(demos.root / "out")]
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1])}
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    time.sleep(2.0)  # workers started, demo running
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    cache = demos.root / ".termlab-cache"
    entries = list((cache / "v1").glob("*/*")) if (cache / "v1").exists() else []
    assert all((e / "result.json").is_file() for e in entries)  # whole or absent
    done = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    summary = json.loads((demos.root / "out" / "slow" / "summary.json").read_text())
    assert summary["metrics"] == {"done": 1.0} and summary["error"] is None
    time.sleep(2.0)  # the orphaned child of the killed build finishes; next run sweeps it
    subprocess.run(cmd, env=env, capture_output=True, timeout=60)
    assert not any((cache / "tmp").iterdir())


def test_strict_build_fails_with_a_summary_of_demo_failures(project, caplog_mkdocs):
    project.write("demos/broken.py", "def run(demo):\n    x = 1\n    raise RuntimeError('bad')\n")
    project.write("demos/claims.py", "def run(demo):\n    demo.claim('two is less than one', 2 < 1,"
                  " a=demo.number(2, 'a'), b=demo.number(1, 'b'))\n")
    project.write("glossary/a.yaml", entry("A") + "demo: broken\n")
    project.write("glossary/b.yaml", entry("B") + "demo: claims\n")
    with pytest.raises(Abort):
        project.build()
    text = caplog_mkdocs.text
    assert "demos/broken.py:3: demo 'broken' (for glossary/a.yaml) failed: bad" in text
    assert "demos/claims.py:2: claim failed: two is less than one (a=2, b=1)" in text


def test_non_strict_build_shows_demo_error_on_page_and_builds_the_rest(project):
    project.write("demos/broken.py", "def run(demo):\n    raise RuntimeError('bad thing')\n")
    project.write("demos/fine.py", "def run(demo):\n    demo.metric('score', 0.5, label='Score')\n")
    project.write("glossary/a.yaml", entry("A") + "demo: broken\n")
    project.write("glossary/b.yaml", entry("B", body="Score was {{score}}.") + "demo: fine\n")
    project.build(strict=False)
    assert "The demo <code>broken</code> failed" in project.html("terms/a/index.html")
    assert "bad thing" in project.html("terms/a/index.html")
    page_b = project.html("terms/b/index.html")
    assert "Score was 0.5." in page_b and "Measured numbers" in page_b


def test_demo_source_is_on_the_page_but_not_in_the_search_index(demos):
    demos.write("glossary/g.yaml", entry("G") + "demo: good\n")
    demos.build()
    assert "helpers.shapes" in demos.html("terms/g/index.html")  # the collapsed source
    index = demos.json("search/search_index.json")
    page = [d["text"] for d in index["docs"] if d["location"].startswith("terms/g/")]
    assert page and "ORT" in " ".join(page)  # the claims are searchable
    assert not any("helpers.shapes" in text for text in page)


def test_figures_reserve_their_space_before_they_load(demos):
    demos.write("glossary/g.yaml", entry("G") + "demo: good\n")
    demos.build()
    imgs = re.findall(r"<img[^>]*>", demos.html("terms/g/index.html"))
    figures = [i for i in imgs if "relu-" in i]
    assert len(figures) == 2  # light and dark
    for img in figures:
        assert 'loading="lazy"' in img and 'width="614"' in img and 'height="384"' in img, img


def test_unknown_placeholder_is_an_error(project, caplog_mkdocs):
    project.write("demos/fine.py", "def run(demo):\n    demo.metric('score', 0.5)\n")
    project.write("glossary/b.yaml", entry("B", body="Score was {{scor}}.") + "demo: fine\n")
    with pytest.raises(Abort):
        project.build()
    assert ("glossary/b.yaml:4: body: placeholder {{scor}} cannot be filled: its demo has no "
            "metric 'scor' (it has: score)") in caplog_mkdocs.text


def _site_bytes(site: Path) -> dict[str, bytes]:
    return {p.relative_to(site).as_posix(): p.read_bytes() for p in sorted(site.rglob("*"))
            if p.is_file()}


def test_cold_build_renders_pages_while_demos_run_and_matches_a_warm_build(project, caplog_mkdocs):
    """Pages are rendered before the demos finish and settled one by one; the result must be
    what a build with every result cached renders: the term pages, a summary quoting a metric
    on other pages, the index's problem list, terms.json and the previews."""
    project.write("demos/slow.py", "import time\ndef run(demo):\n    time.sleep(1.0)\n"
                  "    demo.metric('score', 0.75, label='Score')\n    demo.claim('score is high', True, score=0.75)\n")
    project.write("demos/fast.py", "def run(demo):\n    demo.metric('loss', 0.125)\n")
    project.write("demos/broken.py", "def run(demo):\n    raise RuntimeError('bad thing')\n")
    project.write("glossary/a.yaml", entry("A", summary="A scores {{score}} on the test.",
                                           related=["b"]) + "demo: slow\n")
    project.write("glossary/b.yaml", entry("B", body="Loss {{loss}}; [[a]].", related=["a"])
                  + "demo: fast\n")
    project.write("glossary/c.yaml", entry("C", body="Nothing: {{nothing}}.") + "demo: broken\n")
    project.write("glossary/d.yaml", entry("D", related=["a"]))
    cold = _site_bytes(project.build(strict=False))
    assert "termlab: demos: 3 total, 0 cached, 3 to run" in caplog_mkdocs.text
    caplog_mkdocs.clear()
    warm = _site_bytes(project.build(strict=False))
    assert "termlab: demos: 3 total, 3 cached, 0 to run" in caplog_mkdocs.text
    assert cold.keys() == warm.keys()
    assert [name for name in cold if cold[name] != warm[name]] == []
    page_d = cold["terms/d/index.html"].decode()
    assert "A scores 0.75 on the test." in page_d
    assert "score is high" in cold["terms/a/index.html"].decode()
    index = cold["index.html"].decode()
    assert "bad thing" in index or "placeholder {{nothing}} cannot be filled" in index
    terms = json.loads(cold["terms.json"])
    assert "0.75" in json.dumps(terms)


def test_a_termlab_bug_while_settling_a_page_is_named_and_loses_nothing(project, caplog_mkdocs,
                                                                          monkeypatch):
    from generator.build import Build

    project.write("demos/fast.py", "def run(demo):\n    demo.metric('loss', 0.125)\n")
    project.write("glossary/a.yaml", entry("A") + "demo: fast\n")
    site = project.build()
    before = _site_bytes(site)

    def broken(self, src_uri):
        raise KeyError("oops")

    monkeypatch.setattr(Build, "settle", broken)
    with pytest.raises(Abort):
        project.build(force=True)
    assert "termlab failed with KeyError: 'oops' — this is a bug in termlab" in caplog_mkdocs.text
    assert "Traceback" not in caplog_mkdocs.text
    assert _site_bytes(site) == before  # the published site is untouched
