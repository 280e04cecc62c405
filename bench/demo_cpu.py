"""Where the CPU of a cold build's demos goes: the twelve gallery-parity demos (see
gallery_parity.py) run through the warm worker's own code, in the worker's environment (its
pinned threads and malloc settings), one at a time (CPU, not parallelism), --repeat rounds in
alternating order. Two questions:

1. What a clean process per demo costs. Forked: a child forked from the warm worker for each
   demo, as every build runs them. One process: a single child runs all twelve in turn (what
   running several demos per process would cost; the per-process setup, a session, limits and
   the write guard, is left out). Medians of user and system CPU and page faults, and of each round's difference.
2. What termlab's figures cost against a plain PNG (what mkdocs-gallery's scraper saves): each
   script run in a child of its own, then its figures saved either way; the CPU of the saving.

    .venv/bin/python bench/demo_cpu.py --repeat 7
"""

from __future__ import annotations

import argparse
import contextlib
import importlib
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from gallery_parity import make_termlab  # noqa: E402

PRELOAD = ["matplotlib.pyplot", "numpy"]  # what the engine's plan preloads for these scripts


def jobs(demos: Path, out: Path) -> list:
    from generator.demo.protocol import Job

    made = []
    for path in sorted(demos.glob("plot_*.py")):
        folder = out / path.stem
        folder.mkdir(parents=True)
        made.append(Job(path.stem, path.stem, str(path), str(demos), str(folder)))
    return made


def forked(batch: list) -> list:
    """A forked child per demo, one at a time; the summed usage of the twelve."""
    from generator.demo.runtime import worker

    total = [0.0, 0.0, 0]
    for job in batch:
        run = worker.start(job)
        _, _, usage = os.wait4(run.pid, 0)
        os.close(run.pidfd)
        total = [total[0] + usage.ru_utime, total[1] + usage.ru_stime, total[2] + usage.ru_minflt]
    return total


def one_process(batch: list) -> list:
    """One forked child runs every demo in turn; its usage."""
    from generator.demo.runtime import child

    pid = os.fork()
    if pid == 0:
        class NoGuard:
            def __init__(self, *_: object) -> None: ...
            def explain(self, _: BaseException) -> None: ...
        child.WriteGuard = NoGuard
        child.resource.setrlimit = lambda *_: None
        os.setsid = lambda: None
        for job in batch:
            child._run(job.with_scratch(tempfile.mkdtemp(prefix="termlab-demo-")))
            for name in [m for m in sys.modules if m.startswith(("termlab_demo_", "gallery"))]:
                del sys.modules[name]  # the next demo imports its own modules afresh
        os._exit(0)
    _, _, usage = os.wait4(pid, 0)
    return [usage.ru_utime, usage.ru_stime, usage.ru_minflt]


def figures_cpu(root: Path, script: str, mode: str) -> float:
    """CPU seconds a child spends saving the figures ``script`` draws: termlab's way (text
    raised for phones, SVG, the dark variant) or a plain ``savefig`` to PNG."""
    import matplotlib.pyplot as plt

    from generator.demo.runtime import plots

    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:
        out = Path(tempfile.mkdtemp(prefix="termlab-figures-", dir=root))
        os.chdir(out)
        os.dup2(os.open(os.devnull, os.O_WRONLY), 1)  # the scripts print their results
        with plots.matplotlib_rc("light") if mode == "termlab" else contextlib.nullcontext():
            importlib.import_module(f"gallery.{script}")
        start = time.process_time()
        for i, number in enumerate(plt.get_fignums()):
            fig = plt.figure(number)
            if mode == "termlab":
                plots.save_captured(fig, out, f"figure-{i}")
            else:
                fig.savefig(out / f"figure-{i}.png")
        os.write(write, str(time.process_time() - start).encode())
        os._exit(0)
    os.close(write)
    seconds = float(os.read(read, 64))
    os.close(read)
    os.waitpid(pid, 0)
    return seconds


def inner(root: Path, repeat: int) -> None:
    from generator.demo.runtime import worker

    worker.warm_up(PRELOAD)
    worker.prepare_figures()
    sys.path.insert(0, str(root / "demos"))
    scripts = sorted(p.stem for p in (root / "demos").glob("plot_*.py"))
    results: dict[str, list] = {"forked": [], "one process": [], "termlab": [], "plain PNG": []}
    for i in range(repeat):
        order = ["forked", "one process"] if i % 2 == 0 else ["one process", "forked"]
        for mode in order:
            batch = jobs(root / "demos", root / "out" / f"{i}-{mode.replace(' ', '-')}")
            results[mode].append(forked(batch) if mode == "forked" else one_process(batch))
        for mode in ["termlab", "plain PNG"] if i % 2 == 0 else ["plain PNG", "termlab"]:
            results[mode].append(sum(figures_cpu(root, script, mode) for script in scripts))
    print(json.dumps(results))


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeat", type=int, default=7)
    parser.add_argument("--inner", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.inner:
        inner(args.inner, args.repeat)
        return
    from generator.demo.pool import worker_env

    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp) / "termlab"
        make_termlab(root)
        out = subprocess.run([sys.executable, __file__, "--inner", str(root), "--repeat", str(args.repeat)],
                             env=worker_env(), cwd=root, check=True, capture_output=True, text=True).stdout
    results = json.loads(out.splitlines()[-1])
    figures = {mode: statistics.median(results.pop(mode)) for mode in ("termlab", "plain PNG")}
    med = {mode: [statistics.median(r[k] for r in runs) for k in range(3)] for mode, runs in results.items()}
    print(f"twelve gallery-parity demos, one at a time, medians of {args.repeat} rounds:\n")
    print("| | user CPU | system CPU | user + system | page faults |\n|---|--:|--:|--:|--:|")
    for mode, (user, system, faults) in med.items():
        print(f"| {mode} | {user:.2f} s | {system:.2f} s | {user + system:.2f} s | {faults:,.0f} |")
    paired = [[f[k] - o[k] for k in range(3)] for f, o in zip(results["forked"], results["one process"], strict=True)]
    user, system, faults = (statistics.median(d[k] for d in paired) for k in range(3))
    total = sorted(d[0] + d[1] for d in paired)
    print(f"\na process per demo costs {statistics.median(total):.2f} s of CPU per twelve demos, "
          f"median of the rounds' differences ({user:+.2f} s user, {system:+.2f} s system, "
          f"{faults:+,.0f} page faults; per round {total[0]:.2f} to {total[-1]:.2f} s)")
    print(f"\nsaving the twelve scripts' figures: termlab {figures['termlab']:.2f} s (SVG, phone-sized "
          f"text, dark variant), plain PNG savefig {figures['plain PNG']:.2f} s: "
          f"{figures['termlab'] / figures['plain PNG']:.2f} x")


if __name__ == "__main__":
    main()
