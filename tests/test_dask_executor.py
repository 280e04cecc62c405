"""``executor: dask``: demos run on a Dask cluster (a LocalCluster of two worker processes here),
each still in a forked child with its timeout, memory limit and write guard, and the results
are byte for byte those of the local pool."""

from __future__ import annotations

import json
import logging

import pytest
from conftest import entry

from generator.demo.engine import DemoEngine
from generator.model import DemoSpec

FIGURE = '''
import numpy as np
from helpers.scale import scale

def run(demo):
    x = demo.rng.normal(size=64) * scale()

    @demo.figure("hist", caption="A histogram", alt="Bars of a histogram")
    def _(fig):
        fig.subplots().hist(x, bins=8)

    print("spread", round(float(x.std()), 3))
    demo.metric("mean", float(x.mean()), fmt=".3f")
    demo.claim("the spread is near the scale", abs(float(x.std()) - scale()) < 1,
               std=demo.number(round(float(x.std()), 3), "spread"))
'''
DEMOS = {
    "figure": FIGURE,
    "raises": "def run(demo):\n    raise ValueError('boom')\n",
    "hangs": "import time\ndef run(demo):\n    time.sleep(60)\n",
    "hogs": "import numpy as np\ndef run(demo):\n    np.ones(1 << 40, dtype=np.uint8)\n",
}


@pytest.fixture(scope="module")
def cluster():
    from distributed import LocalCluster

    logging.getLogger("distributed").setLevel(logging.ERROR)
    with LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None,
                      host="127.0.0.1") as c:
        yield c.scheduler_address


@pytest.fixture
def demos(project):
    project.write("demos/helpers/__init__.py", "")
    project.write("demos/helpers/scale.py", "def scale():\n    return 2.0\n")
    for name, source in DEMOS.items():
        project.write(f"demos/{name}.py", source)
    outside = project.root / "escaped.txt"
    project.write("demos/escapes.py", f"def run(demo):\n    open({str(outside)!r}, 'w').write('no')\n")
    return project


def run(project, cache, **engine):
    engine = DemoEngine(project.root / cache, 2, **engine)
    names = [*DEMOS, "escapes"]
    specs = {n: DemoSpec(n, project.demos / f"{n}.py", {}, 3.0 if n == "hangs" else None) for n in names}
    try:
        return engine.run(specs, project.demos, timeout=30, memory_mb=512), engine.cache
    finally:
        engine.close()


def entries(cache) -> dict[str, dict[str, bytes]]:
    """Every entry's files; timings left out of result.json, and the hang's faulthandler dump
    (it names a thread id), which no page shows."""
    found = {}
    for folder in sorted(cache.directory.glob("v1/*/*")):
        files = {p.name: p.read_bytes() for p in sorted(folder.iterdir()) if p.name != "stack.txt"}
        result = json.loads(files.pop("result.json"))
        result.pop("seconds"), result.pop("cpu_seconds")
        found[folder.name] = {**files, "result.json": json.dumps(result, sort_keys=True).encode()}
    return found


def test_dask_runs_give_the_local_pools_results_byte_for_byte(demos, cluster):
    local, local_cache = run(demos, "local")
    remote, remote_cache = run(demos, "dask", executor="dask", scheduler=cluster)
    assert not any(r.cached for r in remote.values())
    assert entries(remote_cache) == entries(local_cache)
    for name, result in local.items():
        other = remote[name]
        assert (other.files, other.error, other.error_file, other.error_line, other.output) == (
            result.files, result.error, result.error_file, result.error_line, result.output), name
    # The limits held on the Dask workers: each failure is the one the local pool reports.
    assert remote["figure"].error is None and remote["figure"].claims[0].holds
    assert remote["raises"].error.startswith("boom") and remote["raises"].error_file == "demos/raises.py"
    assert remote["hangs"].error.startswith("timed out after 3 s and was killed")
    assert remote["hogs"].error.startswith("demo ran out of memory (limit 512 MB)")
    assert "escaped.txt" in remote["escapes"].error and not (demos.root / "escaped.txt").exists()


def test_a_site_built_on_dask_is_the_local_site(project, cluster, caplog_mkdocs):
    project.write("demos/figure.py", FIGURE)
    project.write("demos/helpers/__init__.py", "")
    project.write("demos/helpers/scale.py", "def scale():\n    return 2.0\n")
    project.write("glossary/a.yaml", entry("A", body="Mean {{mean}}.") + "demo: figure\n")

    def site(**plugin):
        folder = project.build(**plugin)
        return {p.relative_to(folder).as_posix(): p.read_bytes() for p in folder.rglob("*") if p.is_file()}

    local = site(cache_dir=str(project.root / "one"))
    on_dask = site(cache_dir=str(project.root / "two"), executor="dask", dask_scheduler=cluster)
    said = [r.getMessage() for r in caplog_mkdocs.records if r.name == "mkdocs.plugins.termlab"]
    assert sum("0 cached, 1 to run" in m for m in said) == 2  # it ran both times (core records may
    # also reach the capture directly, depending on the logging set-up: count MkDocs' copies only)
    assert local.keys() == on_dask.keys()
    assert [name for name in local if local[name] != on_dask[name]] == []


def test_a_worker_with_another_runtime_refuses_and_the_demo_runs_here(demos, cluster, caplog):
    """Results cached under this build's key must come from this build's runtime: a Dask worker
    whose termlab runtime or libraries differ refuses the job, which then runs locally."""
    caplog.set_level(logging.WARNING, logger="termlab")
    engine = DemoEngine(demos.root / "cache", 2, executor="dask", scheduler=cluster)
    try:
        engine.pool.fingerprint = "another runtime"
        results = engine.run({"figure": DemoSpec("figure", demos.demos / "figure.py")}, demos.demos,
                             timeout=30, memory_mb=512)
    finally:
        engine.close()
    assert results["figure"].error is None and results["figure"].claims[0].holds
    assert any("the Dask cluster could not run it" in r.getMessage() and "differ from the build's" in r.getMessage()
               for r in caplog.records)
