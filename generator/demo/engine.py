"""Run every demo the glossary names: from the cache when its key matches, else in the pool."""

from __future__ import annotations

import json
import logging
import time
from concurrent.futures import as_completed
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..load import rel_path
from ..model import DemoSpec, Glossary
from ..problems import Problem
from .cache import DemoCache, demo_key, external_imports, local_imports
from .context import Claim, FigureInfo, Metric

log = logging.getLogger("mkdocs.plugins.termlab.demos")


@dataclass
class DemoResult:
    """One demo run as the page shows it."""

    name: str
    source: str
    source_file: str
    figures: list[FigureInfo] = field(default_factory=list)
    metrics: list[Metric] = field(default_factory=list)
    claims: list[Claim] = field(default_factory=list)
    models: list[str] = field(default_factory=list)
    error: str | None = None
    error_file: str = ""
    error_line: int = 0
    output: str = ""
    seconds: float = 0.0
    cpu_seconds: float = 0.0
    cached: bool = False
    files: dict[str, bytes] = field(default_factory=dict, repr=False)

    def formatted_metrics(self) -> dict[str, str]:
        return {m.name: m.display for m in self.metrics}

    @classmethod
    def from_entry(cls, entry: Path, source: str, name: str, cached: bool) -> DemoResult:
        data = json.loads((entry / "result.json").read_text())
        outputs = data.get("outputs") or {}
        result = cls(
            name=name, source=source, source_file=f"{name}.py",
            figures=[FigureInfo(**f) for f in outputs.get("figures", [])],
            metrics=[Metric(**m) for m in outputs.get("metrics", [])],
            claims=[Claim(**c) for c in outputs.get("claims", [])],
            models=list(outputs.get("models", [])),
            output=data.get("output", ""), seconds=data.get("seconds", 0.0),
            cpu_seconds=data.get("cpu_seconds", 0.0), cached=cached,
        )
        error = data.get("error")
        if error:
            result.error = error["message"] + (f"\n\n{error['trace']}" if error.get("trace") else "")
            result.error_file = error.get("file", "")
            result.error_line = int(error.get("line") or 0)
            return result
        result.files[f"{name}.py"] = source.encode()
        for fig in result.figures:
            for fname in (fig.light, fig.dark):
                result.files[fname] = (entry / fname).read_bytes()
        for model in result.models:
            result.files[model] = (entry / model).read_bytes()
        return result


class DemoEngine:
    """Cache plus a lazily started worker pool; lives across `mkdocs serve` rebuilds."""

    def __init__(self, cache_dir: Path, jobs: int | None = None):
        self.cache = DemoCache(cache_dir)
        self.jobs = jobs
        self.preload: list[str] = []
        self._pool = None

    @property
    def pool(self):
        if self._pool is None:
            from .pool import WorkerPool

            self._pool = WorkerPool(self.jobs, self.preload)
        return self._pool

    def plan_preload(self, specs: dict[str, DemoSpec], demos_dir: Path) -> None:
        """What the warm worker imports: every outside module these demos (and the local
        modules they import) import. Demos that need something else import it themselves."""
        if self._pool is None:
            files = {s.path.resolve() for s in specs.values()}
            for spec in specs.values():
                files |= local_imports(spec.path, demos_dir)
            modules = external_imports(files, demos_dir)
            if any(m.split(".")[0] == "onnx" for m in modules):
                modules.add("onnxruntime")  # demo.onnx() opens an ONNX Runtime session
            self.preload = sorted(modules)

    def close(self) -> None:
        if self._pool is not None:
            self._pool.close()
            self._pool = None

    def prepare(self, specs: dict[str, DemoSpec], demos_dir: Path, *, timeout: float,
                memory_mb: int, force: bool = False) -> bool:
        """Start the warm worker now if any demo will have to run (its imports then overlap
        the rest of the build's start-up). True if it was started."""
        if self._pool is not None:
            return True
        missing = force or any(
            self.cache.get(demo_key(s.path, demos_dir, s.name, s.options, s.timeout or timeout,
                                    memory_mb)) is None for s in specs.values())
        if missing:
            self.plan_preload(specs, demos_dir)
            _ = self.pool
        return missing

    def run(self, specs: dict[str, DemoSpec], demos_dir: Path, *, timeout: float,
            memory_mb: int, force: bool = False) -> dict[str, DemoResult]:
        """Results by invocation id (a demo name plus its options)."""
        self.cache.clean_tmp()
        keyed: dict[str, tuple[str, DemoSpec]] = {}
        results: dict[str, DemoResult] = {}
        todo = []
        for inv, spec in specs.items():
            spec_timeout = spec.timeout or timeout
            key = demo_key(spec.path, demos_dir, spec.name, spec.options, spec_timeout, memory_mb)
            keyed[inv] = (key, spec)
            if force:
                self.cache.evict(key)
            entry = self.cache.get(key)
            if entry is not None:
                results[inv] = DemoResult.from_entry(entry, _source(spec), spec.name, cached=True)
            else:
                todo.append((inv, key, spec, spec_timeout))
        log.info("termlab: demos: %d total, %d cached, %d to run", len(specs), len(results),
                 len(todo))
        if not todo:
            return results
        start = time.monotonic()
        self.plan_preload({inv: spec for inv, _, spec, _ in todo}, demos_dir)
        pool = self.pool
        futures = {}
        for inv, key, spec, t in todo:
            scratch = self.cache.scratch(key)
            job = {"id": key, "name": spec.name, "path": str(spec.path.resolve()),
                   "demos_dir": str(demos_dir.resolve()), "out": str(scratch),
                   "options": spec.options, "timeout": t, "memory_mb": memory_mb}
            futures[pool.submit(job)] = (inv, key, spec, scratch)
        try:
            for done, future in enumerate(as_completed(futures), 1):
                inv, key, spec, scratch = futures.pop(future)
                result = self._store(key, spec, demos_dir, scratch, future.result())
                results[inv] = result
                status = "FAILED" if result.error else "ok"
                log.info("termlab: [%d/%d] demo %s: %s in %.2f s (cpu %.2f s)", done, len(todo),
                         result.name, status, result.seconds, result.cpu_seconds)
        finally:
            for *_, scratch in futures.values():
                self.cache.discard(scratch)
        failed = sum(1 for r in results.values() if r.error)
        log.info("termlab: demos done: %d ran in %.1f s, %d cached, %d failed", len(todo),
                 time.monotonic() - start, len(specs) - len(todo), failed)
        return results

    def _store(self, key: str, spec: DemoSpec, demos_dir: Path, scratch: Path,
               reply: dict[str, Any]) -> DemoResult:
        """Move a finished run into the cache (atomically) and read it back."""
        try:
            outputs_file = scratch / "outputs.json"
            outputs = json.loads(outputs_file.read_text()) if outputs_file.exists() else {}
            error = reply.get("error")
            if error and error.get("file"):
                error["file"] = rel_path(Path(error["file"]), demos_dir.parent)
            result = {"outputs": outputs if not error else {}, "error": error,
                      "output": reply.get("output", ""), "seconds": reply.get("seconds", 0.0),
                      "cpu_seconds": reply.get("cpu_seconds", 0.0)}
            entry = self.cache.commit(key, scratch, result)
        except BaseException:
            self.cache.discard(scratch)
            raise
        return DemoResult.from_entry(entry, _source(spec), spec.name, cached=False)


def _source(spec: DemoSpec) -> str:
    return spec.path.read_text("utf-8", errors="replace")


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
    engine = engine or DemoEngine(options.cache_dir, options.jobs)
    specs = demo_specs(glossary)
    try:
        by_inv = engine.run(specs, options.demos_dir, timeout=options.timeout,
                            memory_mb=options.memory_limit_mb, force=options.force)
    finally:
        if own:
            engine.close()
    results: dict[str, DemoResult] = {}
    problems: list[Problem] = []
    reported: set[str] = set()
    demos_rel = options.demos_dir.name
    for tid, term in glossary.terms.items():
        if not term.demo:
            continue
        inv = invocation(term.demo)
        result = results[tid] = by_inv[inv]
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
    _write_report(options.cache_dir, by_inv)
    return results, problems


def _write_report(cache_dir: Path, results: dict[str, DemoResult]) -> None:
    """Timings live here, never on pages (they would break byte-identical builds)."""
    report = {inv: {"seconds": r.seconds, "cpu_seconds": r.cpu_seconds, "cached": r.cached,
                    "failed": bool(r.error)} for inv, r in sorted(results.items())}
    cache_dir.mkdir(parents=True, exist_ok=True)
    tmp = cache_dir / "build-report.json.tmp"
    tmp.write_text(json.dumps(report, indent=1))
    tmp.replace(cache_dir / "build-report.json")
