"""The seed audit: every demo invocation again under seeds 1..N (its own run is the build's),
without figures, in the same pool after the build's own runs; a finding must hold in all.

Each audited run is cached under its own key (the invocation's key, the audit mode and the
seed), and a finished audit once more as one summary entry, so a warm build reads one file per
demo. The runs are fed to the pool a few at a time by ``AuditRunner``, which lives as long as
the engine (``mkdocs serve``: across rebuilds), so the pages' own runs never queue behind them.
"""

from __future__ import annotations

import hashlib
import json
import logging
import threading
from collections import deque
from concurrent.futures import Future
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

from ..model import Problem, rel_path
from .cache import write_atomic
from .engine import DemoBatch, DemoEngine, DemoResult
from .protocol import Job, Reply
from .runtime.context import Claim, seed_for

REPORT = "audit-report.json"

log = logging.getLogger("termlab.audit")


def run_key(own_key: str, seed: int) -> str:
    """One audited run: the invocation's key (demo files, options, limits, runtime), the audit
    mode (no figures) and the seed."""
    return hashlib.sha256(f"{own_key}\0audit\0{seed}".encode()).hexdigest()


def summary_key(own_key: str, seeds: list[int]) -> str:
    return hashlib.sha256(f"{own_key}\0audit-summary\0{seeds}".encode()).hexdigest()


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


@dataclass
class ClaimAudit:
    """One statement across every audited run: how often it held, and where it did not."""

    statement: str
    kind: str
    line: int
    held: int
    runs: int
    failing: list[dict[str, Any]] = field(default_factory=list)  # {"seed", "numbers"} or {"seed", "why"}


@dataclass
class DemoAudit:
    """A demo invocation's audit: its own run plus the audited seeds."""

    inv: str
    name: str
    own_seed: int
    seeds: list[int]  # own first
    claims: list[ClaimAudit]  # in the order of the own run's claims
    errors: list[SeedRun]  # audited runs that failed

    def to_json(self) -> dict[str, Any]:
        return {"name": self.name, "own_seed": self.own_seed, "seeds": self.seeds,
                "claims": [asdict(c) for c in self.claims],
                "errors": [{"seed": r.seed, "message": r.error, "file": r.error_file, "line": r.error_line}
                           for r in self.errors]}


def combine(inv: str, own: DemoResult, own_seed: int, runs: list[SeedRun]) -> DemoAudit:
    """Match each run's statements to the own run's (by kind, line and order at that line)."""
    def keyed(claims: list[Claim]) -> dict[tuple[str, int, int], Claim]:
        seen: dict[tuple[str, int], int] = {}
        out = {}
        for c in claims:
            n = seen[(c.kind, c.line)] = seen.get((c.kind, c.line), -1) + 1
            out[(c.kind, c.line, n)] = c
        return out

    own_keyed = keyed(own.claims)
    by_seed = [(r, keyed(r.claims)) for r in runs]
    audits = []
    for k, claim in own_keyed.items():
        failing: list[dict[str, Any]] = [] if claim.holds else [{"seed": own_seed, "numbers": claim.numbers}]
        for run, claims in by_seed:
            other = claims.get(k)
            if run.error:
                failing.append({"seed": run.seed, "why": f"the run failed: {run.error.splitlines()[0]}"})
            elif other is None:
                failing.append({"seed": run.seed, "why": "not made in this run"})
            elif not other.holds:
                failing.append({"seed": run.seed, "numbers": other.numbers})
        total = 1 + len(runs)
        audits.append(ClaimAudit(claim.statement, claim.kind, claim.line, total - len(failing), total, failing))
    return DemoAudit(inv, own.name, own_seed, [own_seed, *(r.seed for r in runs)], audits,
                     [r for r in runs if r.error])


def problems(audit: DemoAudit, demos_rel: str) -> list[Problem]:
    """A finding that fails under an audited seed, and an audited run that failed."""
    where = f"{demos_rel}/{audit.name}.py"
    found = []
    for c in audit.claims:
        failing = [f for f in c.failing if f["seed"] != audit.own_seed]  # the own run is reported already
        if c.kind != "finding" or not failing:
            continue
        seeds = ", ".join(str(f["seed"]) for f in failing)
        details = "; ".join(f"seed {f['seed']}: " + (f.get("why") or ", ".join(
            f"{k}={v}" for k, v in f["numbers"].items()) or "does not hold") for f in failing[:5])
        more = f"; and {len(failing) - 5} more" if len(failing) > 5 else ""
        found.append(Problem(where, c.line, f"finding fails under seed {seeds} (held in {c.held} of "
                                            f"{c.runs} runs): {c.statement} ({details}{more})"))
    for run in audit.errors:
        found.append(Problem(run.error_file or where, run.error_line,
                             f"demo '{audit.name}' fails under audit seed {run.seed}: "
                             f"{run.error.splitlines()[0]}"))
    return found


class AuditRunner:
    """Feeds audited runs to the engine's pool, at most two per slot in flight, so that the
    build's own runs (sent straight to the pool) never wait behind more than those. Runs are
    stored in the cache as they finish (on the pool's reader thread)."""

    def __init__(self, engine: DemoEngine, demos_dir: Path):
        self.engine = engine
        self.demos_dir = demos_dir
        self.cond = threading.Condition()
        self.queue: deque[Job] = deque()
        self.flying: dict[str, Job] = {}
        self.lost: dict[str, SeedRun] = {}  # runs whose worker died twice: this session only
        self.closed = False

    def want(self, jobs: list[Job]) -> None:
        """Run these (after what is in flight); queued runs no longer wanted are dropped."""
        with self.cond:
            for job in self.queue:
                self.engine.cache.discard(Path(job.out))
            for job in jobs:
                self.lost.pop(job.id, None)
            self.queue = deque(j for j in jobs if j.id not in self.flying)
            for job in jobs:
                if job.id in self.flying:  # still running for an earlier build: that run serves
                    self.engine.cache.discard(Path(job.out))
        self._feed()

    def cancel(self, keys: set[str]) -> None:
        with self.cond:
            for job in [j for j in self.queue if j.id in keys]:
                self.queue.remove(job)
                self.engine.cache.discard(Path(job.out))
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
            for job in [*self.queue, *self.flying.values()]:
                self.engine.cache.discard(Path(job.out))
            self.queue.clear()
            self.cond.notify_all()

    def _feed(self) -> None:
        while True:
            with self.cond:
                if self.closed or not self.queue or len(self.flying) >= 2 * self.engine.pool.size:
                    return
                job = self.queue.popleft()
                self.flying[job.id] = job
            self._watch(job, self.engine.pool.submit(job), None)

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
                self._store(job, reply)
        except Exception:  # noqa: BLE001 - a reader thread must not die; the run counts as failed
            log.exception("termlab: the audited run of %s (seed %s) failed to store", job.name,
                          job.options["seed"])
            self.lost[job.id] = SeedRun(job.options["seed"], error="its result could not be stored")
        with self.cond:
            self.flying.pop(job.id, None)
            self.cond.notify_all()
        self._feed()

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


class AuditBatch:
    """One build's audit: what the cache has at once, the rest as the runner finishes it."""

    def __init__(self, engine: DemoEngine, batch: DemoBatch, seeds: int, force: bool = False):
        self.engine = engine
        self.seeds = list(range(1, seeds + 1))
        self.done: dict[str, list[SeedRun]] = {}  # seed runs by invocation, once all are in
        self.keys: dict[str, dict[int, str]] = {}  # each invocation's missing runs: key by seed
        self.own_seed: dict[str, int] = {}
        self.summaries: dict[str, str] = {}
        jobs: list[Job] = []
        cache = engine.cache
        for inv, (key, spec, timeout, memory_mb) in sorted(batch.runs.items()):
            own = self.own_seed[inv] = seed_for(spec.name, spec.options)
            seeds = [s for s in self.seeds if s != own]
            self.summaries[inv] = summary_key(key, seeds)
            if force:
                for k in [self.summaries[inv], *(run_key(key, s) for s in seeds)]:
                    cache.evict(k)
            entry = cache.get(self.summaries[inv])
            if entry is not None:
                data = json.loads((entry / "result.json").read_text())
                self.done[inv] = [SeedRun.from_json(r) for r in data["runs"]]
                continue
            self.keys[inv] = {s: run_key(key, s) for s in seeds}
            for s, k in self.keys[inv].items():
                if cache.get(k) is None:
                    jobs.append(Job(k, spec.name, str(spec.path.resolve()), str(batch.demos_dir.resolve()),
                                    str(cache.scratch(k)), {**spec.options, "seed": s}, timeout=timeout,
                                    memory_mb=memory_mb, audit=True))
        self.todo = len(jobs)
        log.info("termlab: audit: %d demos × %d seeds: %d runs cached, %d to do", len(batch.runs),
                 len(self.seeds), sum(len(v) for v in self.keys.values()) - len(jobs)
                 + sum(len(v) for v in self.done.values()), len(jobs))
        self.runner: AuditRunner | None = None
        if jobs:
            if engine.auditor is None:
                engine.auditor = AuditRunner(engine, batch.demos_dir)
            self.runner = engine.auditor
            self.runner.want(jobs)
        for inv in list(self.keys):
            self._collect(inv)

    @property
    def pending(self) -> set[str]:
        return set(self.keys)

    def ready(self, inv: str) -> bool:
        """Whether the invocation's audit is complete (without waiting)."""
        if inv in self.keys:
            self._collect(inv)
        return inv not in self.keys

    def wait(self, invs: set[str]) -> None:
        for inv in invs & self.pending:
            if self.runner is not None:
                self.runner.wait(set(self.keys[inv].values()))
            self._collect(inv)

    def cancel(self, inv: str) -> None:
        """The invocation's own run failed: its audit would say nothing."""
        if inv in self.keys and self.runner is not None:
            self.runner.cancel(set(self.keys.pop(inv).values()))

    def audit(self, inv: str, own: DemoResult | None) -> DemoAudit | None:
        """The invocation's audit, if complete and its own run succeeded."""
        if own is None or own.error or not self.ready(inv) or inv not in self.done:
            return None
        return combine(inv, own, self.own_seed[inv], self.done[inv])

    def _collect(self, inv: str) -> None:
        """Take the invocation's runs in if all are in the cache (or lost); then one summary."""
        if self.runner is not None and self.runner.busy(set(self.keys[inv].values())):
            return
        runs, lost = [], False
        for key in self.keys[inv].values():
            entry = self.engine.cache.get(key)
            if entry is not None:
                runs.append(SeedRun.from_json(json.loads((entry / "result.json").read_text())["audit"]))
            elif self.runner is not None and key in self.runner.lost:
                runs.append(self.runner.lost[key])
                lost = True
            else:
                return  # cancelled or dropped: never complete in this build
        del self.keys[inv]
        self.done[inv] = runs
        if not lost:  # a run lost with its worker is a failure of this build only
            scratch = self.engine.cache.scratch(self.summaries[inv])
            self.engine.cache.commit(self.summaries[inv], scratch, {"runs": [asdict(r) for r in runs]})


def report(seeds: int, audits: dict[str, DemoAudit]) -> dict[str, Any]:
    """The audit as JSON: per demo invocation, each statement's hold rate and failing seeds."""
    return {"seeds": seeds, "demos": {inv: a.to_json() for inv, a in sorted(audits.items())}}


def write_report(cache_dir: Path, seeds: int, audits: dict[str, DemoAudit], path: Path | None = None) -> None:
    text = json.dumps(report(seeds, audits), indent=1, ensure_ascii=False)
    write_atomic(cache_dir / REPORT, text)
    if path is not None:
        write_atomic(path, text)
