"""The Dask executor: demos run on a Dask distributed cluster (``executor: dask``).

``DaskPool`` has the interface of ``pool.WorkerPool`` (submit a ``Job``, get a future of its
``Reply``; ``size``, ``preload``, ``close``), so the engine and the seed audit use either. A job
travels with the files its cache key covers (the demo and the local modules it imports) and
the build's environment fingerprint. On the Dask worker, ``run_on_worker`` writes those files
into a private folder and hands the job to a warm termlab worker of its own (``pool.WorkerPool``,
one per Dask worker process): the demo still runs in a forked child with its timeout, memory
limit and write guard. The outputs come back as bytes and are written into the job's own
scratch folder here, and paths in the reply are spelled as this machine's, so the entry is
what the local pool would have made.
"""

from __future__ import annotations

import logging
import os
import shutil
import tempfile
import threading
from concurrent.futures import Future
from dataclasses import asdict, replace
from pathlib import Path
from typing import Any

from .cache import environment_fingerprint, local_imports
from .protocol import Job, Reply, RunError
from .runtime.child import ERROR_FILE, OUTPUT_FILE, STACK_FILE

log = logging.getLogger("termlab.demos")

SCHEDULER_ENV = "TERMLAB_DASK_SCHEDULER"
TEXT_FILES = (OUTPUT_FILE, STACK_FILE, ERROR_FILE)  # what a run writes that can name its files


class DaskPool:
    """Submit jobs to a Dask cluster; futures resolve to each run's ``Reply``."""

    def __init__(self, scheduler: str, preload: list[str] | None = None):
        try:
            from distributed import Client
        except ImportError as exc:
            raise RuntimeError("executor: dask needs dask.distributed: pip install 'termlab[dask]'") from exc
        self.scheduler = scheduler
        self.preload = sorted(preload or [])
        try:
            self.client = Client(scheduler, timeout="20s", set_as_default=False)
        except OSError as exc:
            raise RuntimeError(f"executor: dask: no Dask scheduler answers at {scheduler!r} ({exc}); "
                               f"start one, or set dask_scheduler / {SCHEDULER_ENV}") from exc
        threads = sum(self.client.nthreads().values())
        self.size = max(1, threads)
        self.fingerprint = environment_fingerprint()
        self._lock = threading.Lock()
        self._inflight: set[Any] = set()

    def add_preload(self, modules: set[str]) -> None:
        self.preload = sorted(set(self.preload) | set(modules))

    def submit(self, job: Job) -> Future:
        demos_dir = Path(job.demos_dir)
        path = Path(job.path)
        files = {}
        for p in sorted({path.resolve(), *local_imports(path, demos_dir)}):
            if p.is_relative_to(demos_dir):
                files[p.relative_to(demos_dir).as_posix()] = p.read_bytes()
        rel = path.resolve().relative_to(demos_dir).as_posix()
        future: Future = Future()
        remote = self.client.submit(run_on_worker, asdict(job), rel, files, self.preload, self.fingerprint,
                                    key=f"termlab-{job.id}-{os.urandom(4).hex()}", pure=False)
        with self._lock:
            self._inflight.add(remote)

        def done(f: Any) -> None:
            with self._lock:
                self._inflight.discard(f)
            try:
                reply_data, outputs, their_dir = f.result()
                reply = _settle(job, Reply.from_json(reply_data), outputs, their_dir)
            except Exception as exc:  # noqa: BLE001 - the run is lost (the engine retries it here), never the build
                log.warning("termlab: demo %s: the Dask cluster could not run it (%s); it runs here instead",
                            job.name, exc)
                reply = Reply(job.id, error=RunError(f"the Dask worker failed to run the demo: {exc}"), lost=True)
            future.set_result(reply)

        remote.add_done_callback(done)
        return future

    def close(self) -> None:
        with self._lock:
            flying, self._inflight = list(self._inflight), set()
        for f in flying:
            f.cancel()
        self.client.close()


class EnvironmentMismatch(RuntimeError):
    """The Dask worker's termlab runtime or libraries differ from the build's."""


def _settle(job: Job, reply: Reply, outputs: dict[str, bytes], their_dir: str) -> Reply:
    """Write the run's files into the job's scratch folder and spell its paths as ours."""
    out = Path(job.out)
    for name, data in outputs.items():
        (out / name).write_bytes(data)
    ours = str(Path(job.demos_dir))

    def here(text: str) -> str:
        return text.replace(their_dir, ours) if text else text

    if reply.error is not None:
        reply.error = replace(reply.error, message=here(reply.error.message), file=here(reply.error.file),
                              trace=here(reply.error.trace))
    reply.output = here(reply.output)
    for name in TEXT_FILES:
        if (out / name).exists():
            (out / name).write_bytes((out / name).read_bytes().replace(their_dir.encode(), ours.encode()))
    return replace(reply, id=job.id)


# What lives in each Dask worker process: its warm termlab worker (started on the first job).
_local: dict[str, Any] = {}
_local_lock = threading.Lock()


def run_on_worker(job_data: dict[str, Any], rel: str, files: dict[str, bytes], preload: list[str],
                  fingerprint: str) -> tuple[dict[str, Any], dict[str, bytes], str]:
    """Runs on a Dask worker: one demo, in a forked child of a warm termlab worker."""
    from .pool import WorkerPool

    if environment_fingerprint() != fingerprint:
        raise EnvironmentMismatch("this Dask worker's termlab runtime, Python or libraries differ "
                                  "from the build's; install the same versions on the workers")
    work = Path(tempfile.mkdtemp(prefix="termlab-dask-"))
    try:
        demos = work / "demos"
        for name, data in files.items():
            target = demos / name
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(data)
        out = work / "out"
        out.mkdir()
        job = replace(Job(**job_data), path=str(demos / rel), demos_dir=str(demos), out=str(out))
        with _local_lock:
            pool = _local.get("pool")
            if pool is None:
                from distributed import get_worker

                pool = _local["pool"] = WorkerPool(get_worker().state.nthreads, preload)
            pool.add_preload(set(preload))
        reply = pool.submit(job).result()
        outputs = {p.name: p.read_bytes() for p in sorted(out.iterdir()) if p.is_file()}
        return asdict(reply), outputs, str(demos)
    finally:
        shutil.rmtree(work, ignore_errors=True)
