"""``termlab`` command line: check, new, demos, generate. A thin adapter over the core."""

from __future__ import annotations

import argparse
import json
import logging
import re
import shutil
import sys
from pathlib import Path

from .problems import format_problems


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
    demos.add_argument("--jobs", type=int, default=0)
    demos.add_argument("--timeout", type=float, default=120.0)

    gen = sub.add_parser("generate", help="write the site's Markdown and files as plain files")
    gen.add_argument("out", type=Path)
    gen.add_argument("--no-demos", action="store_true")
    gen.add_argument("--site-name", default="termlab")

    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s", stream=sys.stderr)
    root = args.root.resolve()
    return {"check": _check, "new": _new, "demos": _demos, "generate": _generate}[args.command](
        args, root)


def _paths(root: Path) -> tuple[Path, Path]:
    return root / "glossary", root / "demos"


def _check(args, root: Path) -> int:
    from .demo.static import demo_file_problems
    from .pipeline import load_and_resolve
    from .render import placeholder_problems

    glossary_dir, demos_dir = _paths(root)
    glossary = load_and_resolve(glossary_dir, demos_dir, root)
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


def slugify(name: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-")


def _new(args, root: Path) -> int:
    from .templates_new import demo_stub, entry_stub

    glossary_dir, demos_dir = _paths(root)
    term_id = slugify(args.name)
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
    from .demo.engine import DemoEngine, DemoResult
    from .model import DemoSpec
    from .pipeline import load_and_resolve

    glossary_dir, demos_dir = _paths(root)
    specs: dict[str, DemoSpec] = {}
    if args.names:
        for name in args.names:
            path = demos_dir / f"{name}.py"
            if not path.is_file():
                print(f"termlab demos: no demo file {path.relative_to(root)}", file=sys.stderr)
                return 2
            specs[name] = DemoSpec(name, path)
    else:
        glossary = load_and_resolve(glossary_dir, demos_dir, root)
        specs = {t.demo.name: t.demo for t in glossary.terms.values() if t.demo}
    engine = DemoEngine(root / ".termlab-cache", args.jobs or None)
    try:
        results: dict[str, DemoResult] = engine.run(specs, demos_dir, timeout=args.timeout,
                                                    memory_mb=2048, force=args.force)
    finally:
        engine.close()
    failed = 0
    for name, result in sorted(results.items()):
        out = args.out / name
        if out.exists():
            shutil.rmtree(out)
        out.mkdir(parents=True)
        for fname, data in result.files.items():
            (out / fname).write_bytes(data)
        summary = {"metrics": {m.name: m.value for m in result.metrics},
                   "claims": [{"statement": c.statement, "holds": c.holds, **c.numbers}
                              for c in result.claims],
                   "error": result.error, "seconds": result.seconds,
                   "cpu_seconds": result.cpu_seconds, "output": result.output}
        (out / "summary.json").write_text(json.dumps(summary, indent=1))
        print(f"== {name}: {'FAILED' if result.error else 'ok'} -> {out}")
        if result.error:
            failed += 1
            print(f"   {result.error_file}:{result.error_line}: {result.error}")
        for m in result.metrics:
            print(f"   {m.name} = {m.display}")
        for c in result.claims:
            mark = "PASS" if c.holds else "FAIL"
            failed += not c.holds
            print(f"   [{mark}] {c.statement} ({', '.join(f'{k}={v}' for k, v in c.numbers.items())})")
    return 1 if failed else 0


def _generate(args, root: Path) -> int:
    from .build import BuildOptions, build_site

    glossary_dir, demos_dir = _paths(root)
    options = BuildOptions(root=root, glossary_dir=glossary_dir, demos_dir=demos_dir,
                           cache_dir=root / ".termlab-cache", run_demos=not args.no_demos)
    site, glossary = build_site(options)
    from .publish.tree import write_project

    write_project(site, glossary, args.out, root / "docs", args.site_name)
    if site.problems:
        print(format_problems(site.problems), file=sys.stderr)
        return 1
    print(f"termlab: wrote {len(site.pages)} pages and {len(site.files)} files to {args.out}; "
          f"build it with: mkdocs build -f {args.out / 'mkdocs.yml'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
