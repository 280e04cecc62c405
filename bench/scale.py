"""Issue 2 benchmark: `termlab check` on 10,000 entries, and full builds of 1,000 and 10,000
synthetic entries (no demos) beside a plain mkdocs-material build of the same pages.

With --check-only (issues 18 and 19): `termlab check` cold (no memo of the entries), after one
entry was edited (the others come from the memo kept by their stat) and with nothing changed,
beside the anchor every YAML checker pays: PyYAML's C loader reading every entry once.

    .venv/bin/python bench/scale.py --check-only --sizes 100000 --repeat 3

The plain anchor builds exactly the Markdown termlab renders (from `termlab generate`), with
`[[links]]` rewritten to ordinary Markdown links and term pages kept out of the nav the same
way, so the ratio is termlab's own overhead. Prints medians of --repeat runs.

    .venv/bin/python bench/scale.py --sizes 1000 10000 --repeat 3
"""

from __future__ import annotations

import argparse
import posixpath
import re
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from synth import make_glossary  # noqa: E402

BIN = Path(sys.executable).parent
MKDOCS_YML = """\
site_name: bench
docs_dir: docs
theme: {{name: material, font: false}}
plugins: [search{plugin}]
{extra}
"""


def timed(cmd: list[str], cwd: Path) -> float:
    start = time.perf_counter()
    done = subprocess.run(cmd, cwd=cwd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    if done.returncode:
        raise SystemExit(f"{' '.join(cmd)} failed in {cwd}:\n{done.stderr[-3000:]}")
    return time.perf_counter() - start


def median_of(repeat: int, cmd: list[str], cwd: Path) -> float:
    return statistics.median(timed(cmd, cwd) for _ in range(repeat))


def plain_site(termlab_root: Path, plain_root: Path) -> None:
    """The same pages as plain Markdown for a plain mkdocs-material build."""
    generated = plain_root / "docs"  # `termlab generate DIR` writes a project: DIR/docs, DIR/mkdocs.yml
    subprocess.run([str(BIN / "termlab"), "--root", str(termlab_root), "generate", str(plain_root),
                    "--no-demos"], check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    link = re.compile(r"\[\[([^\[\]|\n]+?)(?:\|([^\[\]\n]+?))?\]\]")
    for page in generated.rglob("*.md"):
        base = posixpath.dirname(page.relative_to(generated).as_posix()) or "."

        def repl(m: re.Match, base: str = base) -> str:
            tid = m.group(1).strip().lower().replace(" ", "-")
            target = posixpath.relpath(f"terms/{tid}/index.md", base)
            return f"[{m.group(2) or m.group(1)}]({target})"

        page.write_text(link.sub(repl, page.read_text()))
    categories = sorted(p.parent.name for p in (generated / "categories").glob("*/index.md"))
    nav = "".join(f"      - categories/{c}/index.md\n" for c in categories)
    (plain_root / "mkdocs.yml").write_text(MKDOCS_YML.format(
        plugin="", extra="markdown_extensions: [attr_list, md_in_html, admonition, "
                          "pymdownx.details, tables, toc, pymdownx.superfences, "
                          "{pymdownx.tabbed: {alternate_style: true}}]\n"
                          "not_in_nav: |\n  /terms/**\n"
                          # the same nav termlab builds: home, categories; never the terms
                          f"nav:\n  - index.md\n  - Categories:\n      - categories/index.md\n{nav}"))


YAML_ANCHOR = ("import sys, yaml, pathlib\n"
               "for p in sorted(pathlib.Path(sys.argv[1]).glob('*.yaml')):\n"
               "    yaml.load(p.read_bytes(), Loader=yaml.CSafeLoader)\n")


def check_only(sizes: list[int], repeat: int) -> None:
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for n in sizes:
            root = Path(tmp) / f"termlab-{n}"
            make_glossary(root, n)
            check = [str(BIN / "termlab"), "--root", str(root), "check"]
            entry = sorted((root / "glossary").glob("[!_]*.yaml"))[n // 2]
            cold, edited, same = [], [], []
            for i in range(repeat):
                subprocess.run(["rm", "-rf", str(root / ".termlab-cache")], check=True)
                cold.append(timed(check, root))
                entry.write_text(entry.read_text().replace("summary: ", f"summary: Edit {i}. ", 1))
                edited.append(timed(check, root))
                same.append(timed(check, root))
            anchor = median_of(repeat, [sys.executable, "-c", YAML_ANCHOR, str(root / "glossary")], root)
            row = (n, *(statistics.median(x) for x in (cold, edited, same)), anchor)
            rows.append(row)
            print(f"n={n}: check cold {row[1]:.2f} s, after one edit {row[2]:.2f} s, unchanged "
                  f"{row[3]:.2f} s; PyYAML C loader alone {anchor:.2f} s", flush=True)
    print("\n| entries | check cold (s) | after one edit (s) | unchanged (s) | PyYAML C load (s) | "
          "cold / load | edit / load |")
    print("|--:|--:|--:|--:|--:|--:|--:|")
    for n, cold_, edit_, same_, load_ in rows:
        print(f"| {n:,} | {cold_:.2f} | {edit_:.2f} | {same_:.2f} | {load_:.2f} | "
              f"{cold_ / load_:.2f} | {edit_ / load_:.2f} |")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--sizes", type=int, nargs="+", default=[1000, 10000])
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--check-only", action="store_true", help="time `termlab check` only (see above)")
    args = parser.parse_args()
    if args.check_only:
        return check_only(args.sizes, args.repeat)
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for n in args.sizes:
            root = Path(tmp) / f"termlab-{n}"
            make_glossary(root, n)
            (root / "docs").mkdir(exist_ok=True)
            (root / "mkdocs.yml").write_text(MKDOCS_YML.format(plugin=", termlab", extra=""))
            check = median_of(args.repeat, [str(BIN / "termlab"), "--root", str(root), "check"], root)
            plain_root = Path(tmp) / f"plain-{n}"
            plain_site(root, plain_root)
            build = [str(BIN / "mkdocs"), "build", "-q", "-d", str(Path(tmp) / "out")]
            t_termlab = median_of(args.repeat, build, root)
            t_plain = median_of(args.repeat, build, plain_root)
            rows.append((n, check, t_termlab, t_plain))
            print(f"n={n}: check {check:.2f} s, termlab build {t_termlab:.2f} s, "
                  f"plain build {t_plain:.2f} s, ratio {t_termlab / t_plain:.3f}", flush=True)
    print("\n| entries | termlab check (s) | termlab build (s) | plain mkdocs-material (s) | ratio |")
    print("|--:|--:|--:|--:|--:|")
    for n, check, t_termlab, t_plain in rows:
        print(f"| {n:,} | {check:.2f} | {t_termlab:.2f} | {t_plain:.2f} | {t_termlab / t_plain:.3f} |")
    if len(rows) >= 2:
        (n0, _, a0, p0), (n1, _, a1, p1) = rows[0], rows[-1]
        print(f"\ngrowth {n0:,} -> {n1:,} entries ({n1 / n0:.0f}x): termlab {a1 / a0:.1f}x, "
              f"plain {p1 / p0:.1f}x")


if __name__ == "__main__":
    main()
