"""Two versions of termlab, A and B, each building the gallery-parity project cold (see
gallery_parity.py), in pairs: which one goes first alternates, and each pair's difference is
kept. On a noisy machine a change of a few percent shows in the paired differences' median long
before it shows in two separate medians. Prints wall and CPU (the whole process tree's user +
system) medians and the paired medians of A − B.

    git worktree add /tmp/before HEAD~1
    .venv/bin/python bench/ab_cold.py /tmp/before . --repeat 24
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from gallery_parity import ENV, cpu_seconds, make_termlab, mkdocs_build  # noqa: E402


def cold_build(checkout: Path, project: Path) -> tuple[float, float]:
    """Wall and CPU seconds of one cold ``mkdocs build`` with ``checkout``'s generator."""
    make_termlab(project)
    before = cpu_seconds()
    wall = mkdocs_build(project, env={**ENV, "PYTHONPATH": str(checkout)})  # ahead of the editable install
    return wall, cpu_seconds() - before


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("a", type=Path, help="a checkout of termlab (its generator/ is used)")
    parser.add_argument("b", type=Path, help="another checkout")
    parser.add_argument("--repeat", type=int, default=24)
    args = parser.parse_args()
    checkouts = {"A": args.a.resolve(), "B": args.b.resolve()}
    for path in checkouts.values():
        if not (path / "generator" / "__init__.py").is_file():
            raise SystemExit(f"{path}: no generator/ package here; give the root of a termlab checkout")
        # Bytecode for each version's modules, as an installed package has.
        subprocess.run([sys.executable, "-m", "compileall", "-q", str(path / "generator")], check=True)
    runs: dict[str, list[tuple[float, float]]] = {"A": [], "B": []}
    with tempfile.TemporaryDirectory() as tmp:
        for i in range(args.repeat):
            for name in ("A", "B") if i % 2 == 0 else ("B", "A"):
                runs[name].append(cold_build(checkouts[name], Path(tmp) / f"{name}{i}"))
            print(f"pair {i + 1}/{args.repeat}: A {runs['A'][-1][0]:.2f} s, B {runs['B'][-1][0]:.2f} s",
                  flush=True)
    for name, path in checkouts.items():
        walls, cpus = zip(*runs[name], strict=True)
        print(f"{name} ({path}): wall median {statistics.median(walls):.3f} s, "
              f"CPU median {statistics.median(cpus):.3f} s")
    for k, label in ((0, "wall"), (1, "CPU")):
        diffs = [a[k] - b[k] for a, b in zip(runs["A"], runs["B"], strict=True)]
        print(f"A − B {label}, paired median: {statistics.median(diffs):+.3f} s")


if __name__ == "__main__":
    main()
