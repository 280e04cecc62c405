"""Run a downloaded demo on its own: ``python <demo>.py`` in the unzipped folder.

Not imported by the build: ``bundle.py`` ships this file in each demo's download as
``termlab_runtime/standalone.py``, beside a copy of the build's own demo runtime (``context.py``
and what it imports), so ``run(demo)`` gets the same context it gets in a build, with the
options of the page the download came from: the same figures, models and numbers.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from .context import DemoContext  # type: ignore[import-not-found]  # resolved inside the download

SETUP_FILE = "demo.json"  # {"name": ..., "options": {...}}, written by bundle.py
OUTPUT_DIR = "output"
# As in the build's worker (demo/pool.py): one thread per library, so the numbers are the page's
# (a threaded BLAS sums in another order) and a small net does not spin idle threads.
PINNED = {"OPENBLAS_NUM_THREADS": "1", "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1",
          "NUMEXPR_NUM_THREADS": "1", "MALLOC_MMAP_THRESHOLD_": "16777216",
          "MALLOC_TRIM_THRESHOLD_": "67108864"}


def main(run: Callable[[Any], Any], demo_file: str) -> None:
    """Run the demo, write its files into ``output/``, print what it found; exit 1 if a
    finding or a check does not hold."""
    if any(os.environ.get(k) != v for k, v in PINNED.items()):  # numpy is loaded: start again
        sys.exit(subprocess.call([sys.executable, demo_file, *sys.argv[1:]],
                                 env={**os.environ, **PINNED}))
    import matplotlib

    matplotlib.use("Agg")  # files only: no window opens
    setup = json.loads(Path(__file__).with_name(SETUP_FILE).read_text("utf-8"))
    out = Path(demo_file).resolve().parent / OUTPUT_DIR
    out.mkdir(exist_ok=True)
    demo = DemoContext(setup["name"], out, setup["options"], demo_file)
    run(demo)
    demo.save()
    sys.exit(report(demo, out))


def report(demo: Any, out: Path) -> int:
    """Print the run's files, numbers and statements; 1 if any statement failed, else 0."""
    outputs = demo.outputs
    options = ", ".join(f"{k} = {v}" for k, v in sorted(demo.options.items()))
    print(f"{demo.name}" + (f" ({options})" if options else "") + f": files in {out}")
    for fig in outputs.figures:
        frames = f"  (a slider: {len(fig.slider.values)} frames)" if fig.slider else ""
        print(f"  figure  {fig.light}  {fig.dark}{frames}")
    for model in outputs.models:
        print(f"  model   {model}")
    for metric in outputs.metrics:
        print(f"  {metric.label or metric.name}: {metric.display}")
    failed = 0
    for claim in outputs.claims:
        failed += not claim.holds
        numbers = ", ".join(f"{k} = {v}" for k, v in claim.numbers.items())
        print(f"[{'held' if claim.holds else 'FAILED'}] {claim.kind}: {claim.statement}"
              + (f" ({numbers})" if numbers else ""))
    print(f"{len(outputs.claims) - failed} of {len(outputs.claims)} findings and checks held")
    return 1 if failed else 0
