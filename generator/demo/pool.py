"""A pool of persistent worker processes with pinned threads and malloc settings."""

from __future__ import annotations

import json
import os
import queue
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any

import generator

# Set before the worker starts: BLAS/OpenMP threads pinned (parallelism comes from the
# pool), and glibc malloc told to keep big blocks (page faults tripled a small MLP's time).
PINNED_ENV = {
    "OPENBLAS_NUM_THREADS": "1",
    "OMP_NUM_THREADS": "1",
    "MKL_NUM_THREADS": "1",
    "NUMEXPR_NUM_THREADS": "1",
    "MALLOC_MMAP_THRESHOLD_": "16777216",
    "MALLOC_TRIM_THRESHOLD_": "67108864",
    "PYTHONHASHSEED": "0",
    "MPLBACKEND": "Agg",
    "PYTHONDONTWRITEBYTECODE": "1",
    "PYTHONUNBUFFERED": "1",
}
# The only variables a demo inherits from the build's environment.
PASSED_ENV = ("PATH", "HOME", "LANG", "LC_ALL", "TMPDIR", "MPLCONFIGDIR", "SOURCE_DATE_EPOCH")


def worker_env() -> dict[str, str]:
    """A scrubbed environment: a few basics, the pinned settings, and the package path."""
    env = {k: os.environ[k] for k in PASSED_ENV if k in os.environ}
    env.setdefault("LANG", "C.UTF-8")
    env.update(PINNED_ENV)
    env["PYTHONPATH"] = str(Path(generator.__file__).resolve().parent.parent)
    return env


class Worker:
    """One worker process and its pipes."""

    def __init__(self) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "generator.demo.worker"], stdin=subprocess.PIPE,
            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, env=worker_env(), text=True,
            bufsize=1, cwd="/")
        self.ready = False

    def call(self, job: dict[str, Any]) -> dict[str, Any] | None:
        """Send one job and wait for its reply; None if the worker died."""
        try:
            if not self.ready:
                if not self.proc.stdout.readline():
                    return None
                self.ready = True
            self.proc.stdin.write(json.dumps(job) + "\n")
            self.proc.stdin.flush()
            line = self.proc.stdout.readline()
        except (BrokenPipeError, OSError):
            return None
        return json.loads(line) if line else None

    def close(self) -> None:
        try:
            self.proc.stdin.close()
            self.proc.wait(timeout=5)
        except (OSError, subprocess.TimeoutExpired):
            self.proc.kill()
            self.proc.wait()


class WorkerPool:
    """``size`` workers started up front (their imports overlap other work)."""

    def __init__(self, size: int | None = None):
        self.size = max(1, size or os.cpu_count() or 1)
        self._idle: queue.Queue[Worker] = queue.Queue()
        self._lock = threading.Lock()
        self._all: list[Worker] = []
        for _ in range(self.size):
            self._add()

    def _add(self) -> None:
        worker = Worker()
        with self._lock:
            self._all.append(worker)
        self._idle.put(worker)

    def run(self, job: dict[str, Any]) -> dict[str, Any]:
        """Run one job on a free worker; a dead worker is replaced and the job reported."""
        worker = self._idle.get()
        reply = worker.call(job)
        if reply is None:
            worker.close()
            with self._lock:
                self._all.remove(worker)
            self._add()
            return {"id": job["id"], "error": {"kind": "WorkerDied", "line": 0, "message":
                                               "the worker process died while running the demo"}}
        self._idle.put(worker)
        return reply

    def close(self) -> None:
        with self._lock:
            workers, self._all = self._all, []
        for worker in workers:
            worker.close()
