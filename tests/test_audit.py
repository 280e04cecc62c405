"""The seed audit (every demo again under seeds 1..N, without figures), and the engine's care
for runs whose worker dies and for concurrent build reports."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import threading
from pathlib import Path

import pytest
from mkdocs.exceptions import Abort

from generator.demo.cache import write_build_report as _write_report
from generator.demo.engine import DemoEngine
from generator.demo.result import DemoResult
from generator.model import DemoSpec

ROOT = Path(__file__).resolve().parents[1]

# Holds for every seed but 2 (its own seed is derived from its name: not 2).
FRAGILE = '''
def run(demo):
    seed = demo.options.get("seed", 0)
    demo.metric("seed_used", seed)
    demo.claim("The run does not use seed 2", seed != 2, seed=demo.number(seed, "seed"))
'''

STURDY = '''
import numpy as np

def run(demo):
    x = float(demo.rng.random())
    demo.setting("points", 40, label="Points")
    demo.metric("x", x, label="Draw", unit="<b>u</b>|v")

    @demo.figure("f", caption="A figure of <i>x</i>", alt="A line at <x>")
    def _(fig):
        fig.subplots().plot([0, 1], [x, x])

    demo.claim("x is below one", x < 1, x=x)
    demo.check("x is not negative", x >= 0, x=x)
'''


def audited(project, seeds: int = 3):
    """The project's mkdocs.yml with the audit on (the fixture's default turns it off)."""
    from conftest import MKDOCS_YML

    project.write("mkdocs.yml", MKDOCS_YML.format(cache=project.root / ".cache")
                  .replace("audit_seeds: 0", f"audit_seeds: {seeds}"))
    return project


def cli(project, *args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(ROOT), "NO_MKDOCS_2_WARNING": "1"}
    env.pop("TERMLAB_CACHE_DIR", None)
    return subprocess.run([sys.executable, "-m", "generator", "--root", str(project.root), *args],
                          capture_output=True, text=True, timeout=300, env=env)


def test_audit_catches_a_seed_fragile_claim(project, caplog_mkdocs):
    audited(project)
    project.term("fragile", demo="fragile")
    project.write("demos/fragile.py", FRAGILE)
    with pytest.raises(Abort):
        project.build(strict=True)
    warnings = [r.getMessage() for r in caplog_mkdocs.records if r.levelname == "WARNING"]
    assert any("demos/fragile.py:5: finding fails under seed 2 (held in 3 of 4 runs): The run does not "
               "use seed 2 (seed 2: seed=2)" in w for w in warnings), warnings

    done = cli(project, "audit", "--seeds", "3", "--report", str(project.root / "audit.json"))
    assert done.returncode == 1, done.stderr
    assert "demos/fragile.py:5: finding fails under seed 2" in done.stderr
    assert "[finding] held in 3 of 4 runs: The run does not use seed 2" in done.stdout
    report = json.loads((project.root / "audit.json").read_text())
    (claim,) = report["demos"]["fragile"]["claims"]
    assert (claim["held"], claim["runs"], claim["failing"]) == (3, 4, [{"seed": 2, "numbers": {"seed": "2"}}])
    assert (project.root / ".cache" / "audit-report.json").is_file()
    assert "0 to do" in done.stderr  # the strict build had audited it already: all cached


def test_audit_of_named_demos_runs_only_those(project):
    audited(project)
    project.term("fragile", demo="fragile")
    project.write("demos/fragile.py", FRAGILE)
    project.term("sturdy", demo="sturdy")
    project.write("demos/sturdy.py", STURDY)
    done = cli(project, "audit", "--seeds", "3", "sturdy")
    assert done.returncode == 0, done.stderr
    assert "== sturdy" in done.stdout and "fragile" not in done.stdout + done.stderr
    unknown = cli(project, "audit", "nosuch")
    assert unknown.returncode == 2 and "no entry names the demo nosuch" in unknown.stderr


def test_page_shows_hold_rates_sanity_checks_and_setup_escaped(project):
    audited(project)
    project.term("sturdy", demo="sturdy", summary="A sturdy thing of {{points}} points.")
    project.write("demos/sturdy.py", STURDY)
    project.build(strict=True)
    html = project.html("terms/sturdy/index.html")
    findings, rest = html.split("What the run shows", 1)[1].split("Sanity checks", 1)
    assert "x is below one" in findings and "held in 4 of 4 seeds" in findings
    assert "x is not negative" not in findings
    assert '<details class="note">\n<summary>Sanity checks</summary>' in html  # collapsed
    assert "x is not negative" in rest.split("</details>")[0]
    measured, setup = rest.split("Measured numbers", 1)[1].split("Setup", 1)
    assert "Draw" in measured and "Points" not in measured and "Points" in setup
    assert "&lt;b&gt;u&lt;/b&gt;" in measured and "<b>u</b>" not in html
    assert "<i>x</i>" not in html and "<x>" not in html  # captions and alt texts stay text
    assert "A sturdy thing of 40 points." in html
    (term,) = project.json("terms.json")["terms"]
    assert [(c["statement"], c["kind"], c["audit"]) for c in term["demo"]["claims"]] == [
        ("x is below one", "finding", {"held": 4, "runs": 4}),
        ("x is not negative", "check", {"held": 4, "runs": 4})]


def test_audit_is_cached_and_a_warm_build_gives_the_same_pages(project, caplog_mkdocs):
    audited(project)
    project.term("sturdy", demo="sturdy")
    project.write("demos/sturdy.py", STURDY)
    project.build(strict=True)
    cold = project.html("terms/sturdy/index.html")
    assert "held in 4 of 4 seeds" in cold
    caplog_mkdocs.clear()
    project.build(strict=True)
    assert project.html("terms/sturdy/index.html") == cold
    logged = "\n".join(r.getMessage() for r in caplog_mkdocs.records)
    assert "audit: 1 demos × 3 seeds: 3 runs cached, 0 to do" in logged
    done = cli(project, "audit", "--seeds", "3")
    assert done.returncode == 0, done.stderr
    assert "0 to do" in done.stderr and "[check] held in 4 of 4 runs: x is not negative" in done.stdout


def test_an_entry_seed_option_still_picks_the_numbers(project):
    project.write("demos/noisy.py", "def run(demo):\n    demo.metric('draw', float(demo.rng.random()))\n")
    project.term("one", demo={"name": "noisy", "seed": 1}, body="Drew {{draw}}.")
    project.term("two", demo={"name": "noisy", "seed": 2}, body="Drew {{draw}}.")
    project.build(strict=True)
    import numpy as np

    for tid, seed in (("one", 1), ("two", 2)):
        assert f"Drew {np.random.default_rng(seed).random():.4g}." in project.html(f"terms/{tid}/index.html")


KILLER = "import os\ndef run(demo):\n    os.kill(os.getppid(), 9)\n"
INNOCENT = "import time\ndef run(demo):\n    time.sleep(0.5)\n    demo.metric('slept', 0.5)\n"


def test_a_demo_that_kills_its_worker_fails_alone_and_is_not_cached(project):
    project.write("demos/killer.py", KILLER)
    project.write("demos/innocent.py", INNOCENT)
    specs = {n: DemoSpec(n, project.demos / f"{n}.py") for n in ("innocent", "killer")}
    for _ in range(2):  # the second time too: a lost run was not cached
        engine = DemoEngine(project.root / ".cache", 2)
        try:
            results = engine.run(specs, project.demos, timeout=30, memory_mb=512)
        finally:
            engine.close()
        assert results["innocent"].error is None and results["innocent"].metrics[0].value == 0.5
        killer = results["killer"]
        assert not killer.cached and "worker process died" in killer.error and "twice" in killer.error
    assert results["innocent"].cached


def test_build_reports_written_at_once_never_collide(tmp_path):
    results = {f"d{i}": DemoResult(f"d{i}", "", f"d{i}.py", seconds=i) for i in range(50)}
    errors = []

    def write() -> None:
        try:
            for _ in range(100):
                _write_report(tmp_path, results)
        except Exception as exc:  # noqa: BLE001 - collected for the assertion
            errors.append(exc)

    threads = [threading.Thread(target=write) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert len(json.loads((tmp_path / "build-report.json").read_text())) == 50
    assert [p.name for p in tmp_path.iterdir()] == ["build-report.json"]  # no temporary file left


def test_serve_never_waits_for_the_audit_and_the_next_rebuild_shows_the_rates(project):
    """As `mkdocs serve` drives the core: pages at once; the rates arrive with a rebuild."""
    from generator.build import Builder
    from generator.settings import BuildOptions

    project.term("sturdy", demo="sturdy")
    project.write("demos/sturdy.py", STURDY.replace("import numpy as np", "import time")
                  .replace("x = float(demo.rng.random())",
                           "x = float(demo.rng.random())\n    time.sleep(1.0 if demo.options.get('seed') else 0)"))
    options = BuildOptions.from_settings(project.root, {"cache_dir": ".cache", "jobs": 2, "audit_seeds": 2})
    builder = Builder(keep_worker=True)
    try:
        build = builder.start(options)
        build.render()
        markdown, _ = build.settle("terms/sturdy/index.md")  # waits for the own run only
        assert markdown is not None and "x is below one" in markdown and "held in" not in markdown
        build.finish()
        builder.end()
        builder.engine.auditor.wait(set(builder.engine.auditor.flying))  # the audit went on meanwhile
        build = builder.start(options)
        assert "held in 3 of 3 seeds" in build.render().pages["terms/sturdy/index.md"]
    finally:
        builder.close()


def test_a_demo_that_states_nothing_is_not_audited(project, caplog_mkdocs):
    """The audit re-checks findings and checks: a gallery-style demo (figures and numbers, no
    statement) leaves it nothing to check: its audited runs wait for its own run and are then
    dropped, cold or warm, while a demo with statements is audited."""
    audited(project)
    project.term("sturdy", demo="sturdy")
    project.write("demos/sturdy.py", STURDY)
    project.term("quiet", demo="quiet", summary="A quiet thing.")
    project.write("demos/quiet.py", "def run(demo):\n    demo.metric('answer', 42, label='The answer')\n")
    project.build(strict=True)
    ran = json.loads((project.root / ".cache" / "audit-report.json").read_text())["demos"]
    assert list(ran) == ["sturdy"]
    audited_runs = [p for p in (project.root / ".cache").rglob("result.json") if '"audit"' in p.read_text()]
    assert len(audited_runs) == 3  # sturdy's three seeds: quiet's waited for its own run, then went
    for p in list((project.root / ".cache").rglob("result.json")):  # forget every audited run: the
        if '"audit"' in p.read_text() or '"runs"' in p.read_text():  # warm build must redo
            shutil.rmtree(p.parent)  # sturdy's, and none of quiet's (its own run is known now)
    caplog_mkdocs.clear()
    project.build(strict=True)
    logged = "\n".join(r.getMessage() for r in caplog_mkdocs.records)
    assert "audit: 2 demos × 3 seeds: 0 runs cached, 3 to do" in logged
    assert "held in" not in project.html("terms/quiet/index.html")
