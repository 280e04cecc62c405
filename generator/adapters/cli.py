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
from dataclasses import replace
from pathlib import Path

from ..model import Problem, format_problems
from ..text.names import slug
from .project import ProjectError, project_options


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="termlab", description="A glossary site generator: one YAML file per term, optional demos "
        "that run while the site builds. Start a project with: termlab init DIR")
    parser.add_argument("--root", type=Path, default=Path("."), help="project folder (default: .)")
    sub = parser.add_subparsers(dest="command", required=True)

    sub.add_parser("check", help="validate every entry without building or running demos")

    new = sub.add_parser("new", help="scaffold an entry (and a demo stub)")
    new.add_argument("name", help='the term\'s display name, e.g. "Label smoothing"')
    new.add_argument("--category", help="a category id from glossary/_categories.yaml "
                     "(default: the first category)")
    new.add_argument("--no-demo", action="store_true", help="do not create a demo stub")

    demos = sub.add_parser("demos", help="run demos on their own and write their outputs")
    demos.add_argument("names", nargs="*", help="demo names (default: every demo an entry names)")
    demos.add_argument("--out", type=Path, default=Path("build/demos"))
    demos.add_argument("--force", action="store_true", help="rerun even when cached")
    demos.add_argument("--jobs", type=int, help="demos at once (default: the site's setting, else one per core)")
    demos.add_argument("--timeout", type=float, help="seconds per demo (default: the site's setting)")
    _add_shard_flag(demos)
    _add_shared_flags(demos)

    audit = sub.add_parser("audit", help="run every demo under seeds 1..N too: findings must hold in all")
    audit.add_argument("names", nargs="*", help="demo names (default: every demo an entry names)")
    audit.add_argument("--seeds", type=int, help="seeds beside each demo's own (default: the site's "
                       "audit_seeds setting, else 20)")
    audit.add_argument("--report", type=Path, help="also write the JSON report here")
    audit.add_argument("--jobs", type=int, help="demos at once (default: the site's setting, else one per core)")
    audit.add_argument("--force", action="store_true", help="rerun the audit even when cached")
    _add_shared_flags(audit)

    gen = sub.add_parser("generate", help="write the site's Markdown and files as plain files")
    gen.add_argument("out", type=Path)
    gen.add_argument("--no-demos", action="store_true")
    gen.add_argument("--site-name", help="default: site_name from mkdocs.yml")

    _add_project_commands(sub)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s", stream=sys.stderr)
    root = args.root.resolve()
    try:
        return {"check": _check, "new": _new, "demos": _demos, "audit": _audit,
                "generate": _generate, "init": _init, "schema": _schema}[args.command](
            args, root)
    except ProjectError as exc:
        print(f"termlab {args.command}: {exc}", file=sys.stderr)
        return 2


def _check(args, root: Path) -> int:
    from ..build import check_entries
    from ..demo.static import demo_path_problems
    from ..model import rel_path
    from ..read import quickcheck
    from ..read.memo import load_memo, memo_path, save_memo

    options = project_options(root)
    kept = memo_path(options.cache_dir, options.glossary_dir)
    # A few entries edited since the last check: only they are read and checked again.
    last = quickcheck.load(kept)
    found = quickcheck.quick(last, options.glossary_dir, options.demos_dir, root)
    memo = None
    if found is None:
        files = quickcheck.stats(options.glossary_dir) if options.glossary_dir.is_dir() else {}
        memo = load_memo(kept)  # entries whose files did not change since the last check are not read
        keep: dict = {}
        loaded, problems = check_entries(options.glossary_dir, options.demos_dir, root, memo, keep)
        found = quickcheck.snapshot(options.glossary_dir, options.demos_dir,
                                    rel_path(options.glossary_dir, root), loaded, problems, keep, files)
    try:
        if memo is not None:
            save_memo(kept, memo)
        if found is not last:
            quickcheck.save(kept, found)
    except OSError as exc:
        print(f"termlab check: could not keep the entries for next time in {kept.parent} ({exc})",
              file=sys.stderr)
    problems = found.all_problems() + demo_path_problems(found.demos.values(), root)
    if problems:
        print(format_problems(problems), file=sys.stderr)
        return 1
    print(f"termlab: {found.counts[0]} terms in {found.counts[1]} categories: ok")
    return 0


def _add_project_commands(sub) -> None:
    """``termlab init`` and ``termlab schema``: a project for any subject."""
    init = sub.add_parser("init", help="start a glossary project in a new folder")
    init.add_argument("dir", type=Path, help="the folder to create (absent or empty)")
    init.add_argument("--title", help="the site's name (asked when not given and run in a terminal; "
                      "default: from the folder's name)")
    init.add_argument("--description", help="one sentence about the glossary (asked like --title)")
    init.add_argument("--no-demos", action="store_true", help="start without a demo (add them later)")
    sub.add_parser("schema", help="write the entry JSON Schemas into schema/ (after upgrading termlab)")


def _init(args, root: Path) -> int:
    from .init import InitError, default_title, init_project

    folder = args.dir.resolve()
    title, description = args.title, args.description
    asking = sys.stdin.isatty()
    if title is None:
        title = (asking and input(f"Site title [{default_title(folder)}]: ").strip()) or default_title(folder)
    if description is None:
        fallback = "A glossary built with termlab."
        description = (asking and input(f"One sentence about it [{fallback}]: ").strip()) or fallback
    try:
        written = init_project(folder, title, description, demos=not args.no_demos)
    except InitError as exc:
        print(f"termlab init: {exc}", file=sys.stderr)
        return 2
    for rel in written:
        print(f"created {args.dir / rel}")
    print(f"next: cd {args.dir} && python3 -m venv .venv && .venv/bin/pip install -r requirements.txt "
          "&& .venv/bin/mkdocs serve")
    return 0


def _schema(args, root: Path) -> int:
    from .init import write_schemas

    changed = write_schemas(root)
    print("\n".join(f"wrote {rel}" for rel in changed) or "schema/ is up to date")
    return 0


def _default_category(options, root: Path) -> str | None:
    from ..read.load import load_categories

    categories, _ = load_categories(options.glossary_dir, root)
    return min(categories.values(), key=lambda c: (c.order, c.id)).id if categories else None


def _new(args, root: Path) -> int:
    from .init import schema_reference
    from .scaffold import demo_stub, entry_stub

    options = project_options(root)
    glossary_dir, demos_dir = options.glossary_dir, options.demos_dir
    category = args.category or _default_category(options, root)
    if category is None:
        print(f"termlab new: {glossary_dir.relative_to(root)}/_categories.yaml declares no category; "
              "add one (e.g. `general: {name: General, order: 1, description: ...}`) or pass --category",
              file=sys.stderr)
        return 2
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
    path.write_text(entry_stub(args.name, category, demo_name, schema_reference(glossary_dir, root)), "utf-8")
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

    options = project_options(root, jobs=args.jobs, timeout=args.timeout, **_shared_settings(args))
    glossary = load_and_resolve(options.glossary_dir, options.demos_dir, root)
    specs = demo_specs(glossary)  # one run per (demo, options), exactly as a build runs them
    if args.shard:
        specs = _shard(specs, args.shard)
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
    engine = DemoEngine.for_options(options)
    try:
        if args.shard:  # a CI matrix job: this shard's runs and their seed audits, into the shared cache
            results = _fill_shard(engine, specs, options, args.force)
        else:
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
    options = project_options(root, audit_seeds=args.seeds, jobs=args.jobs, **_shared_settings(args))
    n = args.seeds if args.seeds is not None else (options.audit_seeds or 20)  # the site may turn builds' audit off
    if not n:
        print("termlab audit: off (0 seeds)")
        return 0
    glossary = load_and_resolve(options.glossary_dir, options.demos_dir, root)
    if args.names:  # only the entries that name these demos
        unknown = set(args.names) - {t.demo.name for t in glossary.terms.values() if t.demo}
        if unknown:
            print(f"termlab audit: no entry names the demo {', '.join(sorted(unknown))}; "
                  f"run `termlab check` to see the entries and their demos", file=sys.stderr)
            return 2
        glossary = replace(glossary, terms={tid: t for tid, t in glossary.terms.items()
                                            if t.demo and t.demo.name in args.names})
    engine = DemoEngine.for_options(options)
    batch = start_demos(glossary, options, engine)  # the own runs, as a build runs (and caches) them
    try:
        audit = seed_audit.AuditBatch(engine, batch, n, args.force)
        results = batch.wait_all()
        for inv, result in results.items():
            if audit.needless(result):
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


def _add_shard_flag(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--shard", type=_shard_spec, metavar="I/N",
                        help="run only shard I of N (1 ≤ I ≤ N) of the demo runs, and their seed audits: "
                        "a CI matrix fills a shared cache (cache_url) before one job builds the site")


def _shard_spec(text: str) -> tuple[int, int]:
    i, sep, n = text.partition("/")
    if not (sep and i.isdigit() and n.isdigit() and 1 <= int(i) <= int(n)):
        raise argparse.ArgumentTypeError(f"{text!r}: write I/N with 1 ≤ I ≤ N, e.g. 2/4")
    return int(i), int(n)


def _shard(specs: dict, shard: tuple[int, int]) -> dict:
    """The runs of shard ``i`` of ``n``: each invocation's place comes from a hash of its name and
    options, so every matrix job agrees without talking to the others, and the shards cover
    every run exactly once."""
    i, n = shard
    return {inv: spec for inv, spec in specs.items()
            if int(hashlib.sha256(inv.encode()).hexdigest(), 16) % n == i - 1}


def _fill_shard(engine, specs: dict, options, force: bool) -> dict:
    """Run a shard's demos and, if the site audits, their audited seeds (all cached)."""
    from ..demo import audit as seed_audit

    batch = engine.start(specs, options.demos_dir, timeout=options.timeout,
                         memory_mb=options.memory_limit_mb, force=force)
    try:
        audit = seed_audit.AuditBatch(engine, batch, options.audit_seeds, force) if options.audit_seeds else None
        results = batch.wait_all()
        if audit is not None:
            for inv in [inv for inv, r in results.items() if audit.needless(r)]:
                audit.cancel(inv)
            audit.wait(audit.pending)
        return results
    finally:
        batch.close()


def _add_shared_flags(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--cache-url", help="shared cache the cache folder fronts: s3://, gs://, file:// or "
                        "https:// (default: the site's cache_url, else TERMLAB_CACHE_URL)")
    parser.add_argument("--cache-write", action="store_true", default=None,
                        help="push new runs to the shared cache (what CI does; authors only read)")
    parser.add_argument("--executor", choices=("local", "dask"), help="where demos run (default: the "
                        "site's executor, else local)")
    parser.add_argument("--dask-scheduler", help="the Dask scheduler's address for --executor dask "
                        "(default: the site's dask_scheduler, else TERMLAB_DASK_SCHEDULER)")


def _shared_settings(args) -> dict:
    return {"cache_url": args.cache_url, "cache_write": args.cache_write, "executor": args.executor,
            "dask_scheduler": args.dask_scheduler}


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
          f"build it with: mkdocs build -f {args.out / 'mkdocs.yml'} (or properdocs build -f "
          f"{args.out / 'properdocs.yml'}, or zensical build -f {args.out / 'zensical.toml'})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
