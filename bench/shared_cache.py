"""The cold build of the real glossary with a warm shared cache, against a warm local build.

"Cold" is a build on a machine whose cache folder is empty, fronting a shared store that CI
filled (here: moto's S3 server on 127.0.0.1, started by this script); goal: no demo runs and
no audited run, and ≤ 1.1 × a warm local build (every entry already in the cache folder),
measured in the same run, interleaved, medians.

The warm local cache is a copy of ``TERMLAB_CACHE_DIR`` (or ``.termlab-cache``): warm it first
with a build. The store is filled by one build that fronts it with that warm copy and
``cache_write`` on (it pushes every entry the build reads). Both kinds of build run the full
seed audit (``audit_seeds`` 20). Usage: ``python bench/shared_cache.py [--repeat 3]``.
"""

from __future__ import annotations

import argparse
import logging
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
RUNS = re.compile(r"termlab: demos: (\d+) total, (\d+) cached, (\d+) to run")
AUDIT = re.compile(r"termlab: audit: .*?(\d+) to do")


def build(cache: Path, site: Path, **extra: str) -> tuple[float, int, int]:
    """Seconds of one ``mkdocs build`` (a fresh process, as CI runs it), demo runs, audited runs."""
    env = {**os.environ, "TERMLAB_CACHE_DIR": str(cache), "TERMLAB_AUDIT_SEEDS": "20",
           "NO_MKDOCS_2_WARNING": "1", "PYTHONPATH": str(ROOT), **extra}
    for name in ("TERMLAB_CACHE_URL", "TERMLAB_CACHE_WRITE"):
        if name not in extra:
            env.pop(name, None)
    start = time.perf_counter()
    done = subprocess.run([sys.executable, "-m", "mkdocs", "build", "-d", str(site)], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=3600)
    seconds = time.perf_counter() - start
    if done.returncode:
        raise SystemExit(f"build failed:\n{done.stderr[-3000:]}")
    runs, audits = RUNS.search(done.stderr), AUDIT.search(done.stderr)
    if runs is None or audits is None:
        raise SystemExit(f"no demo or audit counts in the build's log:\n{done.stderr[-3000:]}")
    return seconds, int(runs.group(3)), int(audits.group(1))


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    from moto.server import ThreadedMotoServer

    logging.getLogger("werkzeug").setLevel(logging.ERROR)  # no line per request

    source = Path(os.environ.get("TERMLAB_CACHE_DIR", ROOT / ".termlab-cache"))
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    s3 = {"AWS_ENDPOINT_URL": f"http://{host}:{port}", "AWS_ACCESS_KEY_ID": "bench",
          "AWS_SECRET_ACCESS_KEY": "bench", "AWS_DEFAULT_REGION": "us-east-1"}
    os.environ.update(s3)
    import s3fs

    s3fs.S3FileSystem().mkdir("termlab-bench")
    url = "s3://termlab-bench/cache"
    with tempfile.TemporaryDirectory(prefix="termlab-shared-bench-") as tmp:
        work = Path(tmp)
        warm = work / "warm"
        shutil.copytree(source / "v1", warm / "v1")
        for name in ("build-report.json", "audit-report.json"):
            if (source / name).exists():
                shutil.copy(source / name, warm / name)
        seconds, runs, audited = build(warm, work / "site", TERMLAB_CACHE_URL=url, TERMLAB_CACHE_WRITE="1")
        print(f"fill the store (a warm build pushing what it reads): {seconds:.2f} s, {runs} demo runs, "
              f"{audited} audited runs")
        local, shared, ran = [], [], []
        for i in range(args.repeat):
            s, r, a = build(warm, work / "site")
            local.append(s)
            ran.append(("warm local", r, a))
            cold = work / f"cold{i}"
            s, r, a = build(cold, work / "site", TERMLAB_CACHE_URL=url)
            shared.append(s)
            ran.append(("cold + shared", r, a))
            print(f"pair {i + 1}: warm local {local[-1]:.2f} s; cold local folder + warm shared store "
                  f"{shared[-1]:.2f} s ({r} demo runs, {a} audited runs)")
    server.stop()
    ml, ms = statistics.median(local), statistics.median(shared)
    print(f"median warm local build: {ml:.2f} s; median cold build with a warm shared cache: {ms:.2f} s")
    pairs = [b / a for a, b in zip(local, shared, strict=True)]
    print(f"each pair's ratio: {', '.join(f'{r:.2f}' for r in pairs)} (median {statistics.median(pairs):.3f})")
    print(f"ratio: {ms / ml:.3f} (goal ≤ 1.1); demo and audited runs in the cold builds: "
          f"{sum(r + a for kind, r, a in ran if kind == 'cold + shared')} (goal 0)")


if __name__ == "__main__":
    main()
