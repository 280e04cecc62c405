"""Run every demo the glossary names: from the cache when its key matches, else in the pool."""

from __future__ import annotations

import json
import logging
import math
import time
from collections.abc import Callable, Iterable
from concurrent.futures import Future, as_completed
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

from ..model import DemoSpec, Glossary, Problem, rel_path
from . import bundle
from .cache import demo_key, external_imports, last_seconds, local_imports, tree_state, write_build_report
from .protocol import Job, Reply
from .readahead import open_cache
from .result import DemoResult, source_of

log = logging.getLogger("termlab.demos")


class DemoEngine:
    """Cache plus a lazily started worker pool; lives across `mkdocs serve` rebuilds."""

    def __init__(self, cache_dir: Path, jobs: int | None = None, *, cache_url: str = "",
                 cache_write: bool = False, executor: str = "local", scheduler: str = ""):
        self.cache = open_cache(cache_dir, cache_url, cache_write)
        self.jobs = jobs
        self.executor, self.scheduler = executor, scheduler
        self.preload: list[str] = []
        self._pool = None
        self.auditor: Any = None  # audit.AuditRunner, once an audit has runs to do
        # Serve: each run's key, kept while no file under demos/ changes, and each cached
        # result read (files and all) once while its key holds (``start``).
        self._tree: tuple = ()
        self._keys: dict[tuple, str] = {}
        self._read: dict[str, DemoResult] = {}

    @classmethod
    def for_options(cls, options: Any) -> DemoEngine:
        """The engine a build's options ask for: its cache (local, or fronting a shared store)
        and its executor (the local pool, or a Dask cluster)."""
        return cls(options.cache_dir, options.jobs, cache_url=options.cache_url,
                   cache_write=options.cache_write, executor=options.executor,
                   scheduler=options.dask_scheduler)

    @property
    def pool(self):
        if self._pool is None:
            if self.executor == "dask":
                from .dask_pool import DaskPool

                self._pool = DaskPool(self.scheduler, self.preload)
            else:
                from .pool import WorkerPool

                self._pool = WorkerPool(self.jobs, self.preload)
        return self._pool

    def start_worker(self) -> None:
        """Start the warm worker now, before knowing whether any demo must run: its imports
        (numpy, matplotlib) then overlap the build's own start-up. ``close`` it if not needed."""
        _ = self.pool

    def plan_preload(self, specs: dict[str, DemoSpec], demos_dir: Path, memo: dict | None = None) -> None:
        """What the warm worker imports: every outside module these demos (and the local
        modules they import) import. Demos that need something else import it themselves."""
        files = {s.path.resolve() for s in specs.values()}
        for spec in specs.values():
            files |= local_imports(spec.path, demos_dir, memo)
        modules = external_imports(files, demos_dir)
        if any(m.split(".")[0] == "onnx" for m in modules):
            modules.add("onnxruntime")  # demo.onnx() opens an ONNX Runtime session
        if self._pool is None:
            self.preload = sorted(modules)
        else:
            self._pool.add_preload(modules)

    def close(self) -> None:
        if self.auditor is not None:
            self.auditor.close()
            self.auditor = None
        if self._pool is not None:
            self._pool.close()
            self._pool = None
        self.cache.close()

    def run(self, specs: dict[str, DemoSpec], demos_dir: Path, *, timeout: float,
            memory_mb: int, force: bool = False) -> dict[str, DemoResult]:
        """Results by invocation id (a demo name plus its options), once all are in."""
        batch = self.start(specs, demos_dir, timeout=timeout, memory_mb=memory_mb, force=force)
        try:
            return batch.wait_all()
        finally:
            batch.close()

    def start(self, specs: dict[str, DemoSpec], demos_dir: Path, *, timeout: float,
              memory_mb: int, force: bool = False,
              also: Callable[[str, DemoSpec], Iterable[str]] | None = None) -> DemoBatch:
        """Take what the cache has and send the rest to the pool, without waiting. ``also``
        names more entries to bring from a shared store with each run's (its seed audit's):
        one round of reads for all."""
        self.cache.clean_tmp()
        batch = DemoBatch(self, demos_dir)
        todo, memo = [], batch.imports
        state = (str(demos_dir.resolve()), tree_state(demos_dir))
        if state != self._tree:  # a demo or helper changed: every key is worked out again
            self._tree, self._keys = state, {}
        for inv, spec in specs.items():
            spec_timeout = spec.timeout or timeout
            key = self._key(spec, demos_dir, spec_timeout, memory_mb, memo)
            batch.runs[inv] = (key, spec, spec_timeout, memory_mb)
        if not force:  # a shared store's entries come into the local folder in one round
            extra = [k for key, spec, *_ in batch.runs.values() for k in also(key, spec)] if also else []
            self.cache.prefetch([key for key, *_ in batch.runs.values()] + extra)
        for inv, (key, spec, spec_timeout, _) in batch.runs.items():
            if force:
                self.cache.evict(key)
            entry = self.cache.get(key)
            if entry is not None:
                result = self._read.get(key)
                if result is None:
                    result = DemoResult.from_entry(entry, source_of(spec), spec.name, cached=True)
                    result = bundle.attach(result, entry, spec, demos_dir, memo)
                batch.results[inv] = result
            else:
                todo.append((inv, key, spec, spec_timeout))
        self._read = {key: batch.results[inv] for inv, (key, *_) in batch.runs.items() if inv in batch.results}
        log.info("termlab: demos: %d total, %d cached, %d to run", len(specs), len(batch.results), len(todo))
        if not todo:
            return batch
        self.plan_preload({inv: spec for inv, _, spec, _ in todo}, demos_dir, memo)
        # Longest first, by the last build's timings (unknown ones first of all): the build
        # then does not end with one long demo running alone on an otherwise idle machine.
        last = last_seconds(self.cache.directory)
        todo.sort(key=lambda item: -last.get(item[0], math.inf))
        pool = self.pool
        for inv, key, spec, t in todo:
            scratch = self.cache.scratch(key)
            job = Job(key, spec.name, str(spec.path.resolve()), str(demos_dir.resolve()), str(scratch),
                      spec.options, timeout=t, memory_mb=memory_mb)
            batch.futures[pool.submit(job)] = Flight(inv, key, spec, scratch, job)
        return batch

    def _key(self, spec: DemoSpec, demos_dir: Path, timeout: float, memory_mb: int, memo: dict) -> str:
        """The run's cache key, worked out once while no file under demos/ changes."""
        ident = (str(spec.path), spec.name, json.dumps(spec.options, sort_keys=True, default=str),
                 timeout, memory_mb)
        if ident not in self._keys:
            self._keys[ident] = demo_key(spec.path, demos_dir, spec.name, spec.options, timeout,
                                         memory_mb, memo)
        return self._keys[ident]

    def retry(self, job: Job) -> tuple[Future, Any]:
        """Run a job again in a fresh worker of its own (its first worker died under it, maybe
        because of another demo): returns the future and that worker, to close when done."""
        from .pool import WorkerPool

        pool = WorkerPool(1, self.preload if self._pool is None else self._pool.preload)
        return pool.submit(job), pool

    def lost(self, spec: DemoSpec, reply: Reply) -> DemoResult:
        """A run whose worker died twice: a failure of this build only, never cached."""
        message = (f"{reply.error.message if reply.error else 'the worker process died'} (twice: the "
                   "demo, or a demo running beside it, kills its worker; not cached)")
        return DemoResult(spec.name, source_of(spec), f"{spec.name}.py", error=message,
                          seconds=reply.seconds, cpu_seconds=reply.cpu_seconds)

    def store(self, key: str, spec: DemoSpec, demos_dir: Path, scratch: Path, reply: Reply,
              imports: dict | None = None) -> DemoResult:
        """Move a finished run into the cache (atomically) and read it back."""
        try:
            outputs_file = scratch / "outputs.json"
            outputs = json.loads(outputs_file.read_text()) if outputs_file.exists() else {}
            error = reply.error
            if error and error.file:
                error.file = rel_path(Path(error.file), demos_dir.parent)
            result = {"outputs": outputs if not error else {}, "error": asdict(error) if error else None,
                      "output": reply.output, "seconds": reply.seconds, "cpu_seconds": reply.cpu_seconds}
            entry = self.cache.commit(key, scratch, result)
        except BaseException:
            self.cache.discard(scratch)
            raise
        result = DemoResult.from_entry(entry, source_of(spec), spec.name, cached=False)
        return bundle.attach(result, entry, spec, demos_dir, imports)


class DemoBatch:
    """One build's demos in flight: cached results at once, the others as they finish.

    Finished runs are stored and logged on the caller's thread, in the order they finish,
    whenever the caller waits; so a build can render its other pages meanwhile."""

    def __init__(self, engine: DemoEngine, demos_dir: Path):
        self.engine = engine
        self.demos_dir = demos_dir
        self.results: dict[str, DemoResult] = {}
        self.futures: dict[Future, Flight] = {}
        self.runs: dict[str, tuple[str, DemoSpec, float, int]] = {}  # key, spec and limits by invocation
        self.imports: dict = {}  # where the demos' imports lead, looked up once (cache.local_imports)
        self.started = time.monotonic()
        self._ran = 0

    @property
    def pending(self) -> set[str]:
        """Invocations still running (or queued)."""
        return {f.inv for f in self.futures.values()}

    def wait(self, invocations: set[str]) -> None:
        """Block until every one of ``invocations`` has a result."""
        if not invocations & self.pending:
            return
        total = self._ran + len(self.futures)
        while True:
            future = next(as_completed(list(self.futures)))
            flight = self.futures.pop(future)
            reply = flight.end(future)
            if reply.lost and flight.attempt == 1:  # its worker died: once more, in a fresh one
                self.engine.cache.discard(flight.scratch)
                scratch = self.engine.cache.scratch(flight.key)
                job = replace(flight.job, out=str(scratch))
                log.info("termlab: demo %s: its worker died; running it again in a fresh worker",
                         flight.spec.name)
                again, pool = self.engine.retry(job)
                self.futures[again] = Flight(flight.inv, flight.key, flight.spec, scratch, job, 2, pool)
                continue
            if reply.lost:
                self.engine.cache.discard(flight.scratch)
                result = self.engine.lost(flight.spec, reply)
            else:
                result = self.engine.store(flight.key, flight.spec, self.demos_dir, flight.scratch,
                                           reply, self.imports)
            inv = flight.inv
            self.results[inv] = result
            self._ran += 1
            log.info("termlab: [%d/%d] demo %s: %s in %.2f s (cpu %.2f s)", self._ran, total,
                     result.name, "FAILED" if result.error else "ok", result.seconds,
                     result.cpu_seconds)
            if not self.futures:
                failed = sum(1 for r in self.results.values() if r.error)
                log.info("termlab: demos done: %d ran in %.1f s, %d cached, %d failed", self._ran,
                         time.monotonic() - self.started, len(self.results) - self._ran, failed)
            if not invocations & self.pending:
                return

    def wait_all(self) -> dict[str, DemoResult]:
        self.wait(self.pending)
        return self.results

    def close(self) -> None:
        """Forget runs still in flight (their scratch folders go; the cache never saw them)."""
        for flight in self.futures.values():
            self.engine.cache.discard(flight.scratch)
            if flight.pool is not None:
                flight.pool.close()
        self.futures.clear()


@dataclass
class Flight:
    """A run in flight: what it is for, where it writes, and which attempt it is (a run whose
    worker died is tried once more, in a worker of its own: ``pool``)."""

    inv: str
    key: str
    spec: DemoSpec
    scratch: Path
    job: Job
    attempt: int = 1
    pool: Any = None

    def end(self, future: Future) -> Reply:
        """The reply; a retry's own worker is closed once it answered."""
        if self.pool is not None:
            self.pool.close()
        return future.result()


def invocation(spec: DemoSpec) -> str:
    """Terms that name the same demo with the same options share one run."""
    return spec.name + ("" if not spec.options else json.dumps(spec.options, sort_keys=True))


def demo_specs(glossary: Glossary) -> dict[str, DemoSpec]:
    """One run per distinct demo invocation."""
    return {invocation(t.demo): t.demo for t in glossary.terms.values() if t.demo}


def run_demos(glossary: Glossary, options: Any, engine: DemoEngine | None = None
              ) -> tuple[dict[str, DemoResult], list[Problem]]:
    """Run (or fetch) every term's demo; failures and failed claims become Problems."""
    own = engine is None
    engine = engine or DemoEngine.for_options(options)
    try:
        by_inv = engine.run(demo_specs(glossary), options.demos_dir, timeout=options.timeout,
                            memory_mb=options.memory_limit_mb, force=options.force)
    finally:
        if own:
            engine.close()
    return finish_demos(glossary, by_inv, options)


def start_demos(glossary: Glossary, options: Any, engine: DemoEngine,
                also: Callable[[str, DemoSpec], Iterable[str]] | None = None) -> DemoBatch:
    """Send every term's demo to ``engine`` (cached ones are ready at once)."""
    return engine.start(demo_specs(glossary), options.demos_dir, timeout=options.timeout,
                        memory_mb=options.memory_limit_mb, force=options.force, also=also)


def results_by_term(glossary: Glossary, by_inv: dict[str, DemoResult]) -> dict[str, DemoResult]:
    """Each term's result (terms naming the same invocation share it), for those that have one."""
    return {tid: by_inv[inv] for tid, term in glossary.terms.items()
            if term.demo and (inv := invocation(term.demo)) in by_inv}


def pending_terms(glossary: Glossary, batch: DemoBatch) -> set[str]:
    """Terms whose demo is still running in ``batch``."""
    pending = batch.pending
    return {tid for tid, term in glossary.terms.items()
            if term.demo and invocation(term.demo) in pending}


def finish_demos(glossary: Glossary, by_inv: dict[str, DemoResult], options: Any
                 ) -> tuple[dict[str, DemoResult], list[Problem]]:
    """Results by term, the problems they show (failed demos and claims), and the build
    report (timings live there, never on pages)."""
    results = results_by_term(glossary, by_inv)
    problems: list[Problem] = []
    reported: set[str] = set()
    demos_rel = options.demos_dir.name
    for tid, result in results.items():
        term = glossary.terms[tid]
        inv = invocation(term.demo)
        if inv in reported:
            continue
        reported.add(inv)
        where = f"{demos_rel}/{term.demo.name}.py"
        if result.error:
            first = result.error.split("\n", 1)[0]
            problems.append(Problem(result.error_file or where, result.error_line,
                                    f"demo '{term.demo.name}' (for {term.where}) failed: {first}"))
        for claim in result.claims:
            if not claim.holds:
                numbers = ", ".join(f"{k}={v}" for k, v in claim.numbers.items())
                problems.append(Problem(where, claim.line, f"claim failed: {claim.statement}"
                                        + (f" ({numbers})" if numbers else "")))
    write_build_report(options.cache_dir, by_inv)
    return results, problems

