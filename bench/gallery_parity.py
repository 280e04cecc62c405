"""Issue 3 benchmark: the twelve gallery-parity scripts as an mkdocs-gallery gallery and as
termlab demos, side by side in one run (medians of --repeat runs, BLAS pinned to 1 thread).

- cold: no cache, no generated files;  warm: rebuild with nothing changed;
- edit-one: rebuild after editing one script (termlab must rerun exactly that demo);
- plain: a plain mkdocs-material build of the same termlab pages (from `termlab generate`),
  the anchor for the warm rebuild;
- sphinx-gallery with `parallel: 2` (joblib, the machine's two cores), the same scripts, cold,
  warm and edit-one, as a second anchor (issue 19: cold ≤ 0.8× it);
- the cold builds' CPU (the whole process tree's user + system time), and how much work two
  CPU-bound processes get through on this machine against one: termlab's cold build runs on
  two cores and mkdocs-gallery's on one, so its wall ratio is about the CPU ratio divided by
  that throughput.

mkdocs-gallery and termlab build in turns, first one then the other, in alternating order.

    .venv/bin/python bench/gallery_parity.py --repeat 5
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SCRIPTS = ROOT.parent / "shared" / "bench" / "gallery-parity"
BIN = Path(sys.executable).parent
EDITED = "plot_05_pca.py"
ENV = {**os.environ, "OPENBLAS_NUM_THREADS": "1", "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1",
       "NO_MKDOCS_2_WARNING": "1", "MPLBACKEND": "Agg"}
THEME = "theme: {name: material, font: false}\n"

ADAPTER = '''"""Runs the gallery script {script} unchanged and publishes its figures."""


def run(demo):
    with demo.pyplot_figures():
        import gallery.{module}  # noqa: F401  (the script runs on import)
'''


def scripts() -> list[Path]:
    return sorted(SCRIPTS.glob("plot_*.py"))


def make_termlab(root: Path) -> None:
    (root / "glossary").mkdir(parents=True)
    (root / "demos" / "gallery").mkdir(parents=True)
    (root / "docs").mkdir()
    (root / "docs" / "about.md").write_text("# About\n")
    (root / "demos" / "gallery" / "__init__.py").write_text("")
    (root / "glossary" / "_categories.yaml").write_text(
        "examples: {name: Examples, order: 1, description: Gallery-parity scripts.}\n")
    for script in scripts():
        shutil.copy(script, root / "demos" / "gallery" / script.name)
        (root / "demos" / script.name).write_text(ADAPTER.format(script=script.name, module=script.stem))
        title = script.read_text().split("\n")[1].lstrip("# ").strip()
        (root / "glossary" / f"{script.stem.replace('_', '-')}.yaml").write_text(
            f"term: {json.dumps(title)}\ncategory: examples\nsummary: The {title} example.\n"
            f"body: The gallery script {script.name}, run as a termlab demo.\ndemo: {script.stem}\n")
    (root / "mkdocs.yml").write_text(f"site_name: parity\n{THEME}plugins:\n  - termlab\n")


def make_gallery(root: Path) -> None:
    (root / "examples").mkdir(parents=True)
    (root / "docs").mkdir()
    (root / "docs" / "index.md").write_text("# Gallery parity\n")
    (root / "examples" / "README.md").write_text("# Examples\n\nThe gallery-parity scripts.\n")
    for script in scripts():
        shutil.copy(script, root / "examples" / script.name)
    (root / "mkdocs.yml").write_text(
        f"site_name: parity\n{THEME}nav:\n  - index.md\n  - Gallery: generated/gallery\n"
        "plugins:\n  - gallery:\n      examples_dirs: examples\n      gallery_dirs: docs/generated/gallery\n")


SPHINX_CONF = """\
project = "parity"
extensions = ["sphinx_gallery.gen_gallery"]
sphinx_gallery_conf = {"examples_dirs": "examples", "gallery_dirs": "auto_examples", "parallel": 2,
                       "download_all_examples": False}
html_theme = "alabaster"
"""


def make_sphinx_gallery(root: Path) -> None:
    (root / "examples").mkdir(parents=True)
    (root / "conf.py").write_text(SPHINX_CONF)
    (root / "index.rst").write_text("Gallery parity\n==============\n\n.. toctree::\n\n   auto_examples/index\n")
    (root / "examples" / "README.rst").write_text("Examples\n========\n\nThe gallery-parity scripts.\n")
    for script in scripts():
        shutil.copy(script, root / "examples" / script.name)


def sphinx_build(root: Path) -> float:
    start = time.perf_counter()
    done = subprocess.run([str(BIN / "sphinx-build"), "-q", "-b", "html", ".", "_build/html"], cwd=root,
                          env=ENV, capture_output=True, text=True)
    seconds = time.perf_counter() - start
    if done.returncode:
        raise SystemExit(f"sphinx-gallery build failed in {root}:\n{done.stderr[-3000:]}")
    return seconds


def mkdocs_build(root: Path, config: str = "mkdocs.yml", env: dict[str, str] = ENV) -> float:
    start = time.perf_counter()
    done = subprocess.run([str(BIN / "mkdocs"), "build", "-q", "-f", config], cwd=root, env=env,
                          capture_output=True, text=True)
    seconds = time.perf_counter() - start
    if done.returncode:
        raise SystemExit(f"build failed in {root}:\n{done.stderr[-3000:]}")
    return seconds


def cpu_seconds() -> float:
    """User + system CPU of every finished child process so far (each build runs as one)."""
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def _spin() -> None:
    total = 0
    for i in range(5_000_000):
        total += i * i


def two_core_throughput() -> float:
    """Work two CPU-bound processes get through at once, against one alone (2.0: two full
    cores; a busy host, or two virtual cores on one physical core, give less)."""
    def wall(n: int) -> float:
        start = time.perf_counter()
        procs = [multiprocessing.get_context("fork").Process(target=_spin) for _ in range(n)]
        for p in procs:
            p.start()
        for p in procs:
            p.join()
        return time.perf_counter() - start
    alone = (wall(1) + wall(1)) / 2
    return 2 * alone / wall(2)


def edit(path: Path, n: int) -> None:
    path.write_text(path.read_text() + f"\n# edit {n}\n")


def termlab_demos_run(root: Path) -> int:
    report = json.loads((root / ".termlab-cache" / "build-report.json").read_text())
    return sum(1 for r in report.values() if not r["cached"])


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    times: dict[str, list[float]] = {k: [] for k in (
        "gallery cold", "gallery warm", "gallery edit-one",
        "termlab cold", "termlab warm", "termlab edit-one", "plain (same pages)",
        "sphinx-gallery cold", "sphinx-gallery warm", "sphinx-gallery edit-one")}
    cpu: dict[str, list[float]] = {"gallery cold": [], "termlab cold": []}
    throughput: list[float] = []
    reran: list[int] = []
    # Bytecode for termlab's own modules, as any installed package has (an editable install
    # under PYTHONDONTWRITEBYTECODE gets none, and would compile them in every build).
    subprocess.run([sys.executable, "-m", "compileall", "-q", str(ROOT / "generator")], check=True)
    with tempfile.TemporaryDirectory() as tmp:
        for i in range(args.repeat):
            run_dir = Path(tmp) / f"run{i}"
            gallery, termlab, sphinx = run_dir / "gallery", run_dir / "termlab", run_dir / "sphinx"
            make_gallery(gallery)
            make_termlab(termlab)
            make_sphinx_gallery(sphinx)
            times["sphinx-gallery cold"].append(sphinx_build(sphinx))
            times["sphinx-gallery warm"].append(sphinx_build(sphinx))
            edit(sphinx / "examples" / EDITED, i)
            times["sphinx-gallery edit-one"].append(sphinx_build(sphinx))
            # Which of the two builds first alternates: a build right after another (whose
            # files the kernel is still writing back) runs slower, and neither always pays it.
            pair = [("gallery", gallery), ("termlab", termlab)][:: -1 if i % 2 else 1]
            for kind in ("cold", "warm", "edit-one"):
                if kind == "edit-one":
                    edit(gallery / "examples" / EDITED, i)
                    edit(termlab / "demos" / "gallery" / EDITED, i)
                for name, root in pair:
                    before = cpu_seconds()
                    times[f"{name} {kind}"].append(mkdocs_build(root))
                    if kind == "cold":
                        cpu[f"{name} cold"].append(cpu_seconds() - before)
            reran.append(termlab_demos_run(termlab))
            generated = run_dir / "plain"
            subprocess.run([str(BIN / "termlab"), "--root", str(termlab), "generate", str(generated)],
                           env=ENV, check=True, capture_output=True)
            mkdocs_build(generated)  # first build of the plain site, then the timed one
            times["plain (same pages)"].append(mkdocs_build(generated))
            throughput.append(two_core_throughput())
            print(f"run {i + 1}/{args.repeat}: " + ", ".join(f"{k} {v[-1]:.2f}s" for k, v in times.items()),
                  flush=True)
    med = {k: statistics.median(v) for k, v in times.items()}
    print("\n| build | mkdocs-gallery (s) | termlab (s) | ratio termlab / anchor | goal |")
    print("|---|--:|--:|--:|---|")
    print(f"| cold | {med['gallery cold']:.2f} | {med['termlab cold']:.2f} | "
          f"{med['termlab cold'] / med['gallery cold']:.2f} × gallery | ≤ 0.5 |")
    print(f"| warm, nothing changed | {med['gallery warm']:.2f} | {med['termlab warm']:.2f} | "
          f"{med['termlab warm'] / med['plain (same pages)']:.2f} × plain ({med['plain (same pages)']:.2f} s) "
          "| ≤ 1.1 |")
    print(f"| one script edited | {med['gallery edit-one']:.2f} | {med['termlab edit-one']:.2f} | "
          f"{med['termlab edit-one'] / med['gallery edit-one']:.2f} × gallery | reruns only that demo |")
    print("\n| build | sphinx-gallery, parallel 2 (s) | termlab (s) | ratio termlab / sphinx-gallery | goal |")
    print("|---|--:|--:|--:|---|")
    for kind, goal in (("cold", "≤ 0.8"), ("warm", ""), ("edit-one", "")):
        anchor = med[f"sphinx-gallery {kind}"]
        print(f"| {kind} | {anchor:.2f} | {med[f'termlab {kind}']:.2f} | "
              f"{med[f'termlab {kind}'] / anchor:.2f} × sphinx-gallery | {goal} |")
    paired = sorted(t / g for t, g in zip(times["termlab cold"], times["gallery cold"], strict=True))
    print("\ncold, per run (termlab / gallery of the same run, sorted): "
          + ", ".join(f"{r:.2f}" for r in paired) + f"; median {statistics.median(paired):.2f}")
    cpu_ratio = statistics.median(cpu["termlab cold"]) / statistics.median(cpu["gallery cold"])
    print(f"cold CPU, whole process tree: mkdocs-gallery {statistics.median(cpu['gallery cold']):.2f} s, "
          f"termlab {statistics.median(cpu['termlab cold']):.2f} s: {cpu_ratio:.2f} ×")
    pace = statistics.median(throughput)
    print(f"two CPU-bound processes did {pace:.2f} × the work of one in the same time (2.00: two full "
          f"cores; per run {min(throughput):.2f}-{max(throughput):.2f}); a cold build spending "
          f"{cpu_ratio:.2f} × gallery's CPU on two cores lands near {cpu_ratio / pace:.2f} × its time")
    print(f"termlab demos rerun after editing {EDITED}: {reran} (must be 1 every time)")


if __name__ == "__main__":
    main()
