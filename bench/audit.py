"""The seed audit of the real glossary: cold, warm, and what it adds to a warm build.

Anchors measured in the same run:

- the physical limit of a cold audit: the sum over demos of one audited (figure-less) run's
  CPU seconds, times the number of seeds, over the cores (goal: cold audit ≤ 1.2 × that);
- a warm build with the audit off (goal: the same build with the audit on, every audited run
  cached, takes ≤ 0.1 s more).

Each cold audit starts from a cache that holds the demos' own runs (as after a build), so it
times what the audit adds. Usage: ``python bench/audit.py [--seeds 20] [--repeat 3] [--cold 1]``.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def env(cache: Path, seeds: int) -> dict[str, str]:
    return {**os.environ, "TERMLAB_CACHE_DIR": str(cache), "TERMLAB_AUDIT_SEEDS": str(seeds),
            "NO_MKDOCS_2_WARNING": "1", "PYTHONPATH": str(ROOT)}


def timed(args: list[str], cache: Path, seeds: int) -> tuple[float, subprocess.CompletedProcess]:
    start = time.perf_counter()
    done = subprocess.run([sys.executable, *args], cwd=ROOT, env=env(cache, seeds), capture_output=True,
                          text=True, timeout=3600)
    return time.perf_counter() - start, done


def audit(cache: Path, seeds: int) -> tuple[float, subprocess.CompletedProcess]:
    return timed(["-m", "generator", "audit", "--seeds", str(seeds)], cache, seeds)


def build(cache: Path, seeds: int, site: Path) -> float:
    seconds, done = timed(["-m", "mkdocs", "build", "-q", "-d", str(site)], cache, seeds)
    if done.returncode:
        raise SystemExit(f"build failed:\n{done.stderr[-3000:]}")
    return seconds


def own_runs(cache: Path) -> None:
    """The demos' own runs, cached (what a build leaves)."""
    from generator.adapters.project import project_options
    from generator.build import load_and_resolve
    from generator.demo.engine import DemoEngine, demo_specs

    os.environ["TERMLAB_CACHE_DIR"] = str(cache)
    options = project_options(ROOT)  # exactly as a build and `termlab audit` run them (same keys)
    glossary = load_and_resolve(options.glossary_dir, options.demos_dir, ROOT)
    engine = DemoEngine(options.cache_dir, options.jobs)
    try:
        engine.run(demo_specs(glossary), options.demos_dir, timeout=options.timeout,
                   memory_mb=options.memory_limit_mb)
    finally:
        engine.close()


def single_seed_cpu(cache: Path) -> float:
    """Σ over demos of one audited (figure-less) run's CPU seconds (seed 1; ``cache`` holds
    no audited run before)."""
    audit(cache, 1)
    report = json.loads((cache / "audit-report.json").read_text())
    runs = [json.loads(p.read_text()) for p in (cache / "v1").glob("*/*/result.json")]
    cpu = [r["audit"]["cpu_seconds"] for r in runs if "audit" in r]
    assert len(cpu) == len(report["demos"]), "a demo's own seed is 1: pass another probe seed"
    return sum(cpu)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seeds", type=int, default=20)
    parser.add_argument("--repeat", type=int, default=3, help="warm runs (medians)")
    parser.add_argument("--cold", type=int, default=1, help="cold audits (each takes minutes)")
    args = parser.parse_args()
    cores = os.cpu_count() or 1
    with tempfile.TemporaryDirectory(prefix="termlab-bench-audit-") as tmp:
        tmp = Path(tmp)
        base = tmp / "own"
        own_runs(base)
        probe = tmp / "probe"
        shutil.copytree(base, probe)
        cpu_one = single_seed_cpu(probe)
        limit = cpu_one * args.seeds / cores
        colds, failing = [], ""
        for i in range(args.cold):
            cache = tmp / f"cold-{i}"
            shutil.copytree(base, cache)
            seconds, done = audit(cache, args.seeds)
            if not re.search(r"demos: \d+ total, \d+ cached, 0 to run", done.stderr):
                raise SystemExit(f"the cold audit ran the demos' own runs too:\n{done.stderr[-3000:]}")
            colds.append(seconds)
            failing = "\n".join(line for line in done.stderr.splitlines() if "fails under" in line)
        warm_cache = tmp / f"cold-{args.cold - 1}"
        warms = [audit(warm_cache, args.seeds)[0] for _ in range(args.repeat)]
        on, off = [], []
        for i in range(args.repeat + 1):  # the first pair warms the page cache: dropped
            off.append(build(warm_cache, 0, tmp / f"site-off-{i}"))
            on.append(build(warm_cache, args.seeds, tmp / f"site-on-{i}"))
        on, off = on[1:], off[1:]
    cold, warm = statistics.median(colds), statistics.median(warms)
    print(f"cores: {cores}; seeds: {args.seeds}")
    print(f"physical limit: Σ single-seed CPU without figures {cpu_one:.2f} s × {args.seeds} / {cores} "
          f"= {limit:.1f} s")
    print(f"cold audit: median {cold:.1f} s of {len(colds)} ({', '.join(f'{c:.1f}' for c in colds)}); "
          f"ratio {cold / limit:.2f} × the limit (goal ≤ 1.2)")
    print(f"warm audit: median {warm:.2f} s of {len(warms)}")
    print(f"warm build: audit off {statistics.median(off):.2f} s, on {statistics.median(on):.2f} s; "
          f"overhead {statistics.median(on) - statistics.median(off):+.3f} s (goal ≤ 0.1 s); "
          f"per pair: {', '.join(f'{a - b:+.3f}' for a, b in zip(on, off, strict=True))}")
    if failing:
        print(f"findings that failed under some seed:\n{failing}")


if __name__ == "__main__":
    main()
