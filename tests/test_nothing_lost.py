"""Nothing lost: failed, killed and concurrent builds never leave a torn site or cache."""

from __future__ import annotations

import hashlib
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from conftest import CATEGORIES, entry
from mkdocs.exceptions import Abort

DEMO = '''
import numpy as np

def run(demo):
    x = demo.rng.normal(size=(400, 40))
    w = np.linalg.lstsq(x, x @ np.ones(40), rcond=None)[0]  # revision {rev}

    @demo.figure("w", caption="Weights", alt="Bar chart of fitted weights")
    def _(fig):
        fig.subplots().bar(range(40), w)

    demo.metric("norm", float(np.linalg.norm(w)), label="Weight norm")
    demo.claim("weights are near one", bool(np.allclose(w, 1)), norm=float(np.linalg.norm(w)))
'''


def tree_digest(folder: Path) -> dict[str, str]:
    return {p.relative_to(folder).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file()}


def make_project(root: Path, rev: int = 0) -> None:
    (root / "glossary").mkdir(parents=True, exist_ok=True)
    (root / "demos").mkdir(exist_ok=True)
    (root / "docs").mkdir(exist_ok=True)
    (root / "glossary" / "_categories.yaml").write_text(CATEGORIES)
    for i in range(40):
        extra = f"demo: d{i % 3}\n" if i < 3 else ""
        (root / "glossary" / f"t{i}.yaml").write_text(entry(f"Term {i}", related=[f"t{(i + 1) % 40}"])
                                                       + extra)
    for k in range(3):
        (root / "demos" / f"d{k}.py").write_text(DEMO.format(rev=rev))
    (root / "mkdocs.yml").write_text("site_name: Kill test\ndocs_dir: docs\ntheme: {name: material}\n"
                                     "plugins:\n  - termlab:\n      jobs: 2\n      audit_seeds: 0\n")


def build(root: Path, env: dict | None = None, site: str = "site") -> subprocess.Popen:
    env = {**os.environ, "NO_MKDOCS_2_WARNING": "1", "SOURCE_DATE_EPOCH": "1700000000", **(env or {})}
    return subprocess.Popen([sys.executable, "-m", "mkdocs", "build", "--strict", "-q", "-d", site],
                            cwd=root, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)


def test_failed_strict_build_keeps_the_previous_site(project):
    project.term("x", "X", summary="The first version.")
    site = project.build()
    before = tree_digest(site)
    project.term("x", "X", summary="The second version.", related=["nope"])
    with pytest.raises(Abort):
        project.build()
    assert tree_digest(site) == before
    assert not list(project.root.glob(".site.termlab-*"))


def test_killed_builds_leave_the_site_and_cache_usable(tmp_path):
    root = tmp_path / "kill"
    make_project(root)
    first = build(root)
    assert first.wait(timeout=300) == 0, first.stderr.read()
    make_project(root, rev=99)  # calibrate the kill window: a build that reruns the demos
    start = time.monotonic()
    calibration = build(root)
    assert calibration.wait(timeout=300) == 0, calibration.stderr.read()
    window = 1.3 * (time.monotonic() - start)  # most builds die at some point, some finish
    rnd = random.Random(1234)
    runs, killed = 25, 0
    # Every complete site the loop may leave: the one before it, and a clean build of each
    # revision (a build killed after its swap leaves a complete new site: that is fine).
    complete = [tree_digest(root / "site")]
    for rev in range(4):
        ref = tmp_path / f"ref{rev}"
        make_project(ref, rev=rev)
        assert build(ref).wait(timeout=300) == 0
        complete.append(tree_digest(ref / "site"))
    for i in range(runs):
        make_project(root, rev=i % 4)  # some runs rerun demos, others hit the cache
        proc = build(root)
        time.sleep(rnd.uniform(0.0, window))
        if proc.poll() is None:
            proc.send_signal(signal.SIGKILL)
            killed += 1
        proc.wait(timeout=300)
        assert tree_digest(root / "site") in complete, f"torn site after run {i}"
        for entry_dir in (root / ".termlab-cache" / "v1").glob("*/*"):
            assert (entry_dir / "result.json").is_file(), f"torn cache entry after run {i}"
    print(f"killed {killed} of {runs} builds in flight")
    assert killed >= runs // 3, killed  # the test must really kill builds in flight
    final = build(root)
    assert final.wait(timeout=300) == 0, final.stderr.read()
    assert tree_digest(root / "site") == complete[1 + (runs - 1) % 4]  # equals a clean build
    assert not list(root.glob(".site.termlab-*"))


def test_two_builds_at_once_share_a_cache(tmp_path):
    root = tmp_path / "twice"
    make_project(root, rev=7)
    a, b = build(root, site="site-a"), build(root, site="site-b")
    assert a.wait(timeout=300) == 0, a.stderr.read()
    assert b.wait(timeout=300) == 0, b.stderr.read()
    assert tree_digest(root / "site-a") == tree_digest(root / "site-b")
    for entry_dir in (root / ".termlab-cache" / "v1").glob("*/*"):
        assert (entry_dir / "result.json").is_file()
    again = build(root, site="site-c")
    assert again.wait(timeout=300) == 0
    assert tree_digest(root / "site-c") == tree_digest(root / "site-a")
