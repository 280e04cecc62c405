"""How many of the machine's cores sit idle during a cold build of the gallery-parity demos
(see gallery_parity.py), in quarter-second steps, averaged over --repeat builds: the part of a
build that more parallel work could still shorten. Reads /proc/stat every 50 ms; run it on a
quiet machine (anything else running counts as busy).

    .venv/bin/python bench/cold_idle.py --repeat 5
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from gallery_parity import BIN, ENV, make_termlab  # noqa: E402

STEP = 0.25


def _cpu_times() -> tuple[int, int]:
    """Idle (with I/O wait) and total jiffies of all cores, from /proc/stat."""
    with open("/proc/stat") as f:
        fields = [int(v) for v in f.readline().split()[1:]]
    return fields[3] + fields[4], sum(fields)


def idle_cores(root: Path) -> tuple[float, dict[int, float]]:
    """One cold build in ``root``: its seconds and the idle cores in each STEP from its start."""
    samples: list[tuple[float, int, int]] = []
    done = threading.Event()

    def sample() -> None:
        while not done.is_set():
            samples.append((time.monotonic(), *_cpu_times()))
            time.sleep(0.05)

    sampler = threading.Thread(target=sample)
    sampler.start()
    start = time.monotonic()
    subprocess.run([str(BIN / "mkdocs"), "build", "-q"], cwd=root, env=ENV, check=True, capture_output=True)
    seconds = time.monotonic() - start
    done.set()
    sampler.join()
    steps: dict[int, list[float]] = {}
    for (t0, idle0, total0), (_, idle1, total1) in zip(samples, samples[1:], strict=False):
        if total1 > total0:
            steps.setdefault(int((t0 - start) / STEP), []).append(
                os.cpu_count() * (idle1 - idle0) / (total1 - total0))
    return seconds, {k: sum(v) / len(v) for k, v in steps.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    runs = []
    with tempfile.TemporaryDirectory() as tmp:
        for i in range(args.repeat):
            root = Path(tmp) / f"termlab{i}"
            make_termlab(root)
            runs.append(idle_cores(root))
            print(f"build {i + 1}: {runs[-1][0]:.2f} s")
    print(f"\nidle cores of {os.cpu_count()}, mean over {len(runs)} cold builds:")
    for step in sorted({k for _, steps in runs for k in steps}):
        values = [steps[step] for _, steps in runs if step in steps]
        print(f"{step * STEP:5.2f}-{(step + 1) * STEP:.2f} s  {sum(values) / len(values):.2f}"
              f"  ({len(values)} of {len(runs)} builds still running)")


if __name__ == "__main__":
    main()
