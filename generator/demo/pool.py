"""The worker pool: one warm process (imports once) that runs a forked child per demo, up to
one per core at a time, with pinned threads and malloc settings."""

from __future__ import annotations

import json
import os
import select
import subprocess
import sys
import threading
from concurrent.futures import Future
from pathlib import Path
from typing import Any

import generator

from .protocol import Job, Reply, died

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


class WorkerPool:
    """Submit jobs, get futures; ``size`` demos run at once in forked children."""

    def __init__(self, size: int | None = None, preload: list[str] | None = None):
        self.size = max(1, size or os.cpu_count() or 1)
        self.preload = sorted(preload or [])
        self._ready = threading.Event()
        self._lock = threading.Lock()
        self._futures: dict[Any, Future] = {}
        self._proc: subprocess.Popen | None = None
        self._start()

    def _start(self) -> None:
        self._ready.clear()
        self._proc = subprocess.Popen(
            [sys.executable, "-m", "generator.demo.runtime.worker", "--slots", str(self.size),
             "--preload", ",".join(self.preload)],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
            env=worker_env(), cwd="/")
        threading.Thread(target=self._read, args=(self._proc,), daemon=True).start()

    def _read(self, proc: subprocess.Popen) -> None:
        for line in proc.stdout:
            reply = json.loads(line)
            if "ready" in reply:
                self._ready.set()
                continue
            with self._lock:
                future = self._futures.pop(reply["id"], None)
            if future is not None:
                future.set_result(Reply.from_json(reply))
        with self._lock:  # the worker is gone: every job still in flight failed
            orphans = [(k, f) for k, f in self._futures.items() if getattr(f, "proc", None) is proc]
            for key, _ in orphans:
                self._futures.pop(key)
            if self._proc is proc:
                self._proc = None
        for key, future in orphans:
            future.set_result(died(key))

    def add_preload(self, modules: set[str]) -> None:
        """Have the worker import these too (once) before it starts the next demo."""
        extra = sorted(set(modules) - set(self.preload))
        if extra:
            self.preload = sorted(set(self.preload) | set(extra))
            self._send({"preload": extra})

    def _send(self, message: dict[str, Any]) -> bool:
        with self._lock:
            if self._proc is None:
                self._start()
            proc = self._proc
        try:
            proc.stdin.write((json.dumps(message) + "\n").encode())
            proc.stdin.flush()
            return True
        except (BrokenPipeError, OSError):
            return False

    def submit(self, job: Job) -> Future:
        """Queue one demo run; the future resolves to the worker's ``Reply``."""
        future: Future = Future()
        with self._lock:
            if self._proc is None:
                self._start()
            future.proc = self._proc  # type: ignore[attr-defined]
            self._futures[job.id] = future
            proc = self._proc
        try:
            proc.stdin.write(job.to_line())
            proc.stdin.flush()
        except (BrokenPipeError, OSError):
            with self._lock:
                self._futures.pop(job.id, None)
            future.set_result(died(job.id))
        return future

    def close(self) -> None:
        with self._lock:
            proc, self._proc = self._proc, None
        if proc is None:
            return
        try:
            if not self._ready.is_set():
                raise OSError("still importing: nothing to finish")
            proc.stdin.close()  # the worker stops its children and exits
            _wait_exit(proc, timeout=10)
        except (OSError, subprocess.TimeoutExpired):
            proc.kill()
            proc.wait()


def _wait_exit(proc: subprocess.Popen, timeout: float) -> None:
    """Reap ``proc`` the moment it exits (``Popen.wait(timeout)`` polls with sleeps of up to
    50 ms, which sat at the end of every build)."""
    pidfd = os.pidfd_open(proc.pid)
    try:
        if not select.select([pidfd], [], [], timeout)[0]:
            raise subprocess.TimeoutExpired(proc.args, timeout)
    finally:
        os.close(pidfd)
    proc.wait()
