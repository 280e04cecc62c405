"""Issue 17 benchmark: the cold build of this glossary (an empty demo cache, the seed audit off,
`mkdocs build --strict`) against what it cannot beat on this machine: Σ of the demos' CPU
seconds / cores + MkDocs' own time (a warm build of the same site, median of 3). Goal: ≤ 1.2 ×.
Also prints each demo's CPU (goal for a new demo: ≤ 2 s).

    .venv/bin/python bench/cold_build.py --repeat 2
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def build(cache: Path, site: Path) -> float:
    env = {**os.environ, "TERMLAB_CACHE_DIR": str(cache), "TERMLAB_AUDIT_SEEDS": "0", "NO_MKDOCS_2_WARNING": "1"}
    start = time.perf_counter()
    subprocess.run([sys.executable, "-m", "mkdocs", "build", "-q", "--strict", "-d", str(site)],
                   cwd=ROOT, env=env, check=True)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeat", type=int, default=2, help="cold builds, each from an empty cache")
    args = parser.parse_args()
    cores = os.cpu_count() or 1
    with tempfile.TemporaryDirectory(prefix="termlab-cold-") as tmp:
        for i in range(args.repeat):
            cache, site = Path(tmp) / f"cache{i}", Path(tmp) / "site"
            cold = build(cache, site)
            report = json.loads((cache / "build-report.json").read_text())
            cpu = {name: run.get("cpu_seconds", 0.0) for name, run in report.items()}
            warm = statistics.median(build(cache, site) for _ in range(3))
            limit = sum(cpu.values()) / cores + warm
            slow = sorted(cpu.items(), key=lambda kv: -kv[1])[:3]
            print(f"cold build {cold:.2f} s; Σ demo CPU {sum(cpu.values()):.2f} s over {len(cpu)} demos "
                  f"(slowest: {', '.join(f'{n} {s:.2f} s' for n, s in slow)}); warm build {warm:.2f} s; "
                  f"Σ/{cores} cores + warm = {limit:.2f} s; ratio {cold / limit:.3f} (goal ≤ 1.2)", flush=True)


if __name__ == "__main__":
    main()
