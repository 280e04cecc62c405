"""Feeding audited runs to the pool (see ``audit``): a few at a time, each only once its demo's
own run is in and states something to audit."""

from __future__ import annotations

import json
import logging
import threading
from collections import deque
from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

from ..model import rel_path
from .engine import DemoEngine
from .protocol import Job, Reply
from .runtime.records import Claim

log = logging.getLogger("termlab.audit")


@dataclass
class SeedRun:
    """What one audited run said: its statements, or why it failed."""

    seed: int
    claims: list[Claim] = field(default_factory=list)
    error: str = ""
    error_file: str = ""
    error_line: int = 0
    cpu_seconds: float = 0.0

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> SeedRun:
        return cls(**{**data, "claims": [Claim(**c) for c in data.get("claims", [])]})


class AuditRunner:
    """Feeds audited runs to the engine's pool, at most two per slot in flight, so that the
    build's own runs (sent straight to the pool) never wait behind more than those. Runs are
    stored in the cache as they finish (on the pool's reader thread). A queued run has no
    scratch folder yet (its ``Job.out`` is empty): it gets one as it starts, so the runs dropped
    unstarted (those of a demo that states nothing) cost no folder."""

    def __init__(self, engine: DemoEngine, demos_dir: Path):
        self.engine = engine
        self.demos_dir = demos_dir
        self.cond = threading.Condition()
        self.queue: deque[Job] = deque()
        self.flying: dict[str, Job] = {}
        self.lost: dict[str, SeedRun] = {}  # runs whose worker died twice: this session only
        self.closed = False
        self.on_idle: list[Callable[[], None]] = []  # called when the last wanted run is in
        self.gate: Callable[[Job], str] = lambda job: "run"  # "run", "wait" or "drop" (see want)

    def want(self, jobs: list[Job], gate: Callable[[Job], str] | None = None) -> None:
        """Run these (after what is in flight); queued runs no longer wanted are dropped.
        ``gate`` says of a queued run whether it may start ("run"), must wait ("wait": its
        demo's own run is not in yet) or is not needed after all ("drop")."""
        with self.cond:
            self.gate = gate or (lambda job: "run")
            for job in jobs:
                self.lost.pop(job.id, None)
            # One still running for an earlier build serves this one too.
            self.queue = deque(j for j in jobs if j.id not in self.flying)
        self._feed()

    def cancel(self, keys: set[str]) -> None:
        with self.cond:
            self.queue = deque(j for j in self.queue if j.id not in keys)
            self.cond.notify_all()

    def busy(self, keys: set[str]) -> bool:
        with self.cond:
            return any(k in self.flying for k in keys) or any(j.id in keys for j in self.queue)

    def wait(self, keys: set[str]) -> None:
        with self.cond:
            self.cond.wait_for(lambda: self.closed or not (
                keys & self.flying.keys() or any(j.id in keys for j in self.queue)))

    def close(self) -> None:
        with self.cond:
            self.closed = True
            for job in self.flying.values():
                self.engine.cache.discard(Path(job.out))
            self.queue.clear()
            self.cond.notify_all()

    def _feed(self) -> None:
        dropped = False
        while True:
            with self.cond:
                if self.closed or not self.queue or len(self.flying) >= 2 * self.engine.pool.size:
                    break
                job = None
                for queued in list(self.queue):
                    verdict = self.gate(queued)
                    if verdict == "drop":
                        self.queue.remove(queued)
                        dropped = True
                    elif verdict == "run":
                        job = queued
                        break
                if dropped:
                    self.cond.notify_all()
                if job is None:
                    break
                self.queue.remove(job)
                job = replace(job, out=str(self.engine.cache.scratch(job.id)))
                self.flying[job.id] = job
            self._watch(job, self.engine.pool.submit(job), None)
        with self.cond:
            idle = dropped and not (self.closed or self.queue or self.flying)
        if idle:
            for listener in list(self.on_idle):
                listener()

    def _watch(self, job: Job, future: Future, pool: Any) -> None:
        future.add_done_callback(lambda f: self._done(job, f.result(), pool))

    def _done(self, job: Job, reply: Reply, pool: Any) -> None:
        if pool is not None:  # a retry's own worker
            threading.Thread(target=pool.close, daemon=True).start()
        with self.cond:
            if self.closed:
                return
        try:
            if reply.lost and pool is None:  # its worker died (maybe for another demo): once more, alone
                self.engine.cache.discard(Path(job.out))
                again = replace(job, out=str(self.engine.cache.scratch(job.id)))
                with self.cond:
                    self.flying[job.id] = again
                self._watch(again, *self.engine.retry(again))
                return
            if reply.lost:
                self.engine.cache.discard(Path(job.out))
                self.lost[job.id] = SeedRun(job.options["seed"], error=reply.error.message + " (twice)")
            else:
                with self.cond:  # not while close() discards the runs in flight (a cancelled
                    if self.closed:  # audit's run may still be flying when the build ends)
                        return
                    self._store(job, reply)
        except Exception:  # noqa: BLE001 - a reader thread must not die; the run counts as failed
            log.exception("termlab: the audited run of %s (seed %s) failed to store", job.name,
                          job.options["seed"])
            self.lost[job.id] = SeedRun(job.options["seed"], error="its result could not be stored")
        with self.cond:
            self.flying.pop(job.id, None)
            self.cond.notify_all()
            idle = not (self.closed or self.queue or self.flying)
        self._feed()
        if idle:
            for listener in list(self.on_idle):
                listener()

    def _store(self, job: Job, reply: Reply) -> None:
        scratch = Path(job.out)
        outputs_file = scratch / "outputs.json"
        outputs = json.loads(outputs_file.read_text()) if outputs_file.exists() else {}
        for model in scratch.glob("*.onnx"):  # an audit keeps statements and numbers, not models
            model.unlink()
        error = reply.error
        if error and error.file:
            error.file = rel_path(Path(error.file), self.demos_dir.parent)
        run = SeedRun(job.options["seed"], [] if error else [Claim(**c) for c in outputs.get("claims", [])],
                      error.message if error else "", error.file if error else "",
                      error.line if error else 0, reply.cpu_seconds)
        self.engine.cache.commit(job.id, scratch, {"audit": asdict(run)})


def gate_for(engine: DemoEngine, own: tuple[Future, Any] | None) -> str:
    """An audited run waits for its demo's own run, and is dropped if that run states nothing
    (no finding, no check): nothing to audit. Read from the run's outputs (or its cache entry
    once stored); when they cannot be read, it runs, as before."""
    if own is None:
        return "run"  # the own run came from the cache (those stating nothing were left out)
    future, flight = own
    if not future.done():
        return "wait"
    try:
        return "run" if json.loads((flight.scratch / "outputs.json").read_text()).get("claims") else "drop"
    except (OSError, ValueError):
        pass  # stored already: its cache entry says
    entry = engine.cache.get(flight.key)
    if entry is not None:
        try:
            outputs = json.loads((entry / "result.json").read_text()).get("outputs", {})
            return "run" if outputs.get("claims") else "drop"
        except (OSError, ValueError):
            pass
    return "run"
