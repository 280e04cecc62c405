"""``termlab`` command line: check, new, demos, audit, generate. A thin adapter over ``generator.build``:
it reads the same settings a build reads (``plugins: termlab:`` in mkdocs.yml, ``!ENV`` tags and
``TERMLAB_CACHE_DIR`` included)."""

from __future__ import annotations

import argparse
import hashlib
import json
import logging
import shutil
import sys
from pathlib import Path

from ..model import Problem, format_problems
from ..text.names import slug
from .project import ProjectError, project_options


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="termlab", description="An ML glossary where every term runs.")
    parser.add_argument("--root", type=Path, default=Path("."), help="project folder (default: .)")
    sub = parser.add_subparsers(dest="command", required=True)

    sub.add_parser("check", help="validate every entry without building or running demos")

    new = sub.add_parser("new", help="scaffold an entry (and a demo stub)")
    new.add_argument("name", help='the term\'s display name, e.g. "Label smoothing"')
    new.add_argument("--category", default="machine-learning")
    new.add_argument("--no-demo", action="store_true", help="do not create a demo stub")

    demos = sub.add_parser("demos", help="run demos on their own and write their outputs")
    demos.add_argument("names", nargs="*", help="demo names (default: every demo an entry names)")
    demos.add_argument("--out", type=Path, default=Path("build/demos"))
    demos.add_argument("--force", action="store_true", help="rerun even when cached")
    demos.add_argument("--jobs", type=int, help="demos at once (default: the site's setting, else one per core)")
    demos.add_argument("--timeout", type=float, help="seconds per demo (default: the site's setting)")

    audit = sub.add_parser("audit", help="run every demo under seeds 1..N too: findings must hold in all")
    audit.add_argument("--seeds", type=int, help="seeds beside each demo's own (default: the site's "
                       "audit_seeds setting, else 20)")
    audit.add_argument("--report", type=Path, help="also write the JSON report here")
    audit.add_argument("--jobs", type=int, help="demos at once (default: the site's setting, else one per core)")
    audit.add_argument("--force", action="store_true", help="rerun the audit even when cached")

    gen = sub.add_parser("generate", help="write the site's Markdown and files as plain files")
    gen.add_argument("out", type=Path)
    gen.add_argument("--no-demos", action="store_true")
    gen.add_argument("--site-name", help="default: site_name from mkdocs.yml")

    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s", stream=sys.stderr)
    root = args.root.resolve()
    try:
        return {"check": _check, "new": _new, "demos": _demos, "audit": _audit,
                "generate": _generate}[args.command](
            args, root)
    except ProjectError as exc:
        print(f"termlab {args.command}: {exc}", file=sys.stderr)
        return 2


def _check(args, root: Path) -> int:
    from ..build import load_and_resolve
    from ..demo.static import demo_file_problems
    from ..render.pages import placeholder_problems

    options = project_options(root)
    glossary = load_and_resolve(options.glossary_dir, options.demos_dir, root)
    problems = list(glossary.problems) + demo_file_problems(glossary, root)
    # Placeholders can only be filled by a run, but a term without a demo can never fill one.
    for term in glossary.terms.values():
        if not term.demo:
            problems += placeholder_problems(term, None)
    if problems:
        print(format_problems(problems), file=sys.stderr)
        return 1
    print(f"termlab: {len(glossary.terms)} terms in {len(glossary.categories)} categories: ok")
    return 0


def _new(args, root: Path) -> int:
    from .scaffold import demo_stub, entry_stub

    options = project_options(root)
    glossary_dir, demos_dir = options.glossary_dir, options.demos_dir
    term_id = slug(args.name)
    if not term_id:
        print(f"termlab new: '{args.name}' has no letters or digits to make an id from",
              file=sys.stderr)
        return 2
    path = glossary_dir / f"{term_id}.yaml"
    if path.exists():
        print(f"termlab new: {path.relative_to(root)} already exists", file=sys.stderr)
        return 2
    demo_name = None if args.no_demo else term_id.replace("-", "_")
    glossary_dir.mkdir(parents=True, exist_ok=True)
    path.write_text(entry_stub(args.name, args.category, demo_name), "utf-8")
    print(f"created {path.relative_to(root)}")
    if demo_name:
        demo_path = demos_dir / f"{demo_name}.py"
        if not demo_path.exists():
            demos_dir.mkdir(parents=True, exist_ok=True)
            demo_path.write_text(demo_stub(args.name), "utf-8")
            print(f"created {demo_path.relative_to(root)}")
    print("fill in the TODOs, then run: termlab check")
    return 0


def _demos(args, root: Path) -> int:
    from ..build import load_and_resolve
    from ..demo.engine import DemoEngine, demo_specs
    from ..model import DemoSpec

    options = project_options(root, jobs=args.jobs, timeout=args.timeout)
    glossary = load_and_resolve(options.glossary_dir, options.demos_dir, root)
    specs = demo_specs(glossary)  # one run per (demo, options), exactly as a build runs them
    if args.names:
        wanted = {inv: spec for inv, spec in specs.items() if spec.name in args.names}
        for name in args.names:
            path = options.demos_dir / f"{name}.py"
            if not path.is_file():
                print(f"termlab demos: no demo file {path.relative_to(root)}", file=sys.stderr)
                return 2
            if not any(spec.name == name for spec in wanted.values()):
                wanted[name] = DemoSpec(name, path)  # no entry names it: run it without options
        specs = wanted
    engine = DemoEngine(options.cache_dir, options.jobs)
    try:
        results = engine.run(specs, options.demos_dir, timeout=options.timeout,
                             memory_mb=options.memory_limit_mb, force=args.force)
    finally:
        engine.close()
    runs_of = {}
    for spec in specs.values():
        runs_of[spec.name] = runs_of.get(spec.name, 0) + 1
    failed = 0
    for inv, result in sorted(results.items()):
        spec = specs[inv]
        folder = spec.name if runs_of[spec.name] == 1 else (
            f"{spec.name}-{hashlib.sha256(json.dumps(spec.options, sort_keys=True).encode()).hexdigest()[:8]}")
        failed += _write_run(result, spec, args.out / folder)
    return 1 if failed else 0


def _write_run(result, spec, out: Path) -> int:
    """Write one run's files and summary; print what it measured. Returns its failure count."""
    if out.exists():
        shutil.rmtree(out)
    out.mkdir(parents=True)
    for fname, data in result.files.items():
        (out / fname).write_bytes(data)
    summary = {"options": spec.options, "metrics": {m.name: m.value for m in result.metrics},
               "claims": [{"statement": c.statement, "holds": c.holds, **c.numbers} for c in result.claims],
               "error": result.error, "seconds": result.seconds,
               "cpu_seconds": result.cpu_seconds, "output": result.output}
    (out / "summary.json").write_text(json.dumps(summary, indent=1))
    options = f" {json.dumps(spec.options, sort_keys=True)}" if spec.options else ""
    print(f"== {spec.name}{options}: {'FAILED' if result.error else 'ok'} -> {out}")
    failed = 0
    if result.error:
        failed += 1
        print(f"   {result.error_file}:{result.error_line}: {result.error}")
    for m in result.metrics:
        print(f"   {m.name} = {m.display}")
    for c in result.claims:
        failed += not c.holds
        print(f"   [{'PASS' if c.holds else 'FAIL'}] {c.statement} "
              f"({', '.join(f'{k}={v}' for k, v in c.numbers.items())})")
    return failed


def _audit(args, root: Path) -> int:
    from ..build import load_and_resolve
    from ..demo import audit as seed_audit
    from ..demo.engine import DemoEngine, start_demos

    if args.seeds is not None and args.seeds < 0:
        print("termlab audit: --seeds must be 0 or more", file=sys.stderr)
        return 2
    options = project_options(root, audit_seeds=args.seeds, jobs=args.jobs)
    n = args.seeds if args.seeds is not None else (options.audit_seeds or 20)  # the site may turn builds' audit off
    if not n:
        print("termlab audit: off (0 seeds)")
        return 0
    glossary = load_and_resolve(options.glossary_dir, options.demos_dir, root)
    engine = DemoEngine(options.cache_dir, options.jobs)
    batch = start_demos(glossary, options, engine)  # the own runs, as a build runs (and caches) them
    try:
        audit = seed_audit.AuditBatch(engine, batch, n, args.force)
        results = batch.wait_all()
        for inv, result in results.items():
            if result.error:
                audit.cancel(inv)
        audit.wait(audit.pending)
        audits = {inv: a for inv, r in results.items() if (a := audit.audit(inv, r)) is not None}
    finally:
        batch.close()
        engine.close()
    seed_audit.write_report(options.cache_dir, n, audits, args.report)
    failed = 0
    demos_rel = options.demos_dir.name
    for inv, result in sorted(results.items()):
        if result.error:
            failed += 1
            print(f"{result.error_file or f'{demos_rel}/{result.name}.py'}:{result.error_line}: demo "
                  f"'{result.name}' failed: {result.error.splitlines()[0]}", file=sys.stderr)
            continue
        a = audits[inv]
        print(f"== {inv}: {len(a.seeds)} runs (own seed {a.own_seed}, then 1..{n})")
        for c in a.claims:
            print(f"   [{c.kind}] held in {c.held} of {c.runs} runs: {c.statement}")
        own = [Problem(f"{demos_rel}/{a.name}.py", c.line, f"finding fails under its own seed {a.own_seed}: "
                       f"{c.statement}") for c in a.claims
               if c.kind == "finding" and any(f["seed"] == a.own_seed for f in c.failing)]
        for problem in own + seed_audit.problems(a, demos_rel):
            failed += 1
            print(str(problem), file=sys.stderr)
    print(f"termlab audit: {len(audits)} demo runs audited under {n} seeds each; "
          f"report: {options.cache_dir / seed_audit.REPORT}" + (f" and {args.report}" if args.report else ""))
    return 1 if failed else 0


def _generate(args, root: Path) -> int:
    from ..build import build_site
    from ..publish.tree import write_project

    options = project_options(root, run_demos=False if args.no_demos else None)
    site, glossary = build_site(options)
    write_project(site, glossary, args.out, root / "docs", args.site_name or options.title)
    if site.problems:
        print(format_problems(site.problems), file=sys.stderr)
        return 1
    print(f"termlab: wrote {len(site.pages)} pages and {len(site.files)} files to {args.out}; "
          f"build it with: mkdocs build -f {args.out / 'mkdocs.yml'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
