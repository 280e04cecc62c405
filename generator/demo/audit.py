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
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from ..model import Problem
from .auditrunner import AuditRunner, SeedRun, gate_for
from .cache import write_atomic
from .engine import DemoBatch, DemoEngine
from .protocol import Job
from .result import DemoResult
from .runtime.records import Claim, seed_for

REPORT = "audit-report.json"

log = logging.getLogger("termlab.audit")


def run_key(own_key: str, seed: int) -> str:
    """One audited run: the invocation's key (demo files, options, limits, runtime), the audit
    mode (no figures) and the seed."""
    return hashlib.sha256(f"{own_key}\0audit\0{seed}".encode()).hexdigest()


def summary_key(own_key: str, seeds: list[int]) -> str:
    return hashlib.sha256(f"{own_key}\0audit-summary\0{seeds}".encode()).hexdigest()


def summaries(seeds: int) -> Callable[[str, Any], list[str]]:
    """For ``DemoEngine.start(also=...)``: the summary of each run's audit under seeds 1..N (its
    own seed left out), fetched from a shared store in the same round as the runs."""
    def keys(own_key: str, spec: Any) -> list[str]:
        own = seed_for(spec.name, spec.options)
        return [summary_key(own_key, [s for s in range(1, seeds + 1) if s != own])]
    return keys


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
        runs = sorted(batch.runs.items())
        for inv, (key, spec, _, _) in runs:
            own = self.own_seed[inv] = seed_for(spec.name, spec.options)
            self.summaries[inv] = summary_key(key, [s for s in self.seeds if s != own])
        if not force:  # a shared store's summaries, then the runs of audits it has no summary of
            cache.prefetch(self.summaries.values())
            cache.prefetch(run_key(key, s) for inv, (key, *_) in runs if cache.get(self.summaries[inv]) is None
                           for s in self.seeds if s != self.own_seed[inv])
        for inv, (key, spec, timeout, memory_mb) in runs:
            seeds = [s for s in self.seeds if s != self.own_seed[inv]]
            if force:
                for k in [self.summaries[inv], *(run_key(key, s) for s in seeds)]:
                    cache.evict(k)
            own_result = batch.results.get(inv)  # a cached own run is known at once
            if own_result is not None and self.needless(own_result):
                continue
            entry = cache.get(self.summaries[inv])
            if entry is not None:
                data = json.loads((entry / "result.json").read_text())
                self.done[inv] = [SeedRun.from_json(r) for r in data["runs"]]
                continue
            self.keys[inv] = {s: run_key(key, s) for s in seeds}
            path, demos_dir = str(spec.path.resolve()), str(batch.demos_dir.resolve())
            for s, k in self.keys[inv].items():
                if cache.get(k) is None:
                    jobs.append(Job(k, spec.name, path, demos_dir, "", {**spec.options, "seed": s},
                                    timeout=timeout, memory_mb=memory_mb, audit=True))
        self.todo = len(jobs)
        log.info("termlab: audit: %d demos × %d seeds: %d runs cached, %d to do", len(batch.runs),
                 len(self.seeds), sum(len(v) for v in self.keys.values()) - len(jobs)
                 + sum(len(v) for v in self.done.values()), len(jobs))
        self.runner: AuditRunner | None = None
        if jobs:
            if engine.auditor is None:
                engine.auditor = AuditRunner(engine, batch.demos_dir)
            self.runner = engine.auditor
            own = {flight.inv: (future, flight) for future, flight in batch.futures.items()}
            by_job = {k: inv for inv, keys in self.keys.items() for k in keys.values()}
            self.runner.want(jobs, gate=lambda job: gate_for(engine, own.get(by_job.get(job.id, ""))))
            for future, _ in own.values():  # a demo's own run in: its audit may start (or go)
                future.add_done_callback(lambda _f, runner=self.runner: runner._feed())
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

    @staticmethod
    def needless(own: DemoResult) -> bool:
        """An audit re-checks the findings and checks of a run: a run that failed, or that
        states none (a gallery-style script), leaves it nothing to check."""
        return bool(own.error) or not own.claims

    def cancel(self, inv: str) -> None:
        """The invocation's own run failed or states nothing: its audit would say nothing."""
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
