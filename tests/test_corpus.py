"""The bad-input corpus: every way an entry or a demo can be wrong, checked end to end.

Each folder under ``tests/corpus/`` is one case:

- ``files/`` is laid over a small valid base project (the categories file, one valid term
  ``baseline``, an ``mkdocs.yml``);
- ``generate.py`` (optional) defines ``generate(root)`` to write inputs too big to commit;
- ``expect.yaml`` says what must come out:

  ``check``: the exact problem lines ``termlab check`` prints, or ``ok`` when check cannot
  see the problem (it never runs demos);
  ``build``: substrings the strict MkDocs build must log, or ``ok`` when the strict build
  must succeed (every warning it logs must be one of termlab's ``path:line:`` problems);
  ``html_must_not_contain`` (optional): strings no page of the non-strict build may contain
  in its live markup (see ``live_markup``: escaped text is inert and does not count);
  ``must_not_exist`` (optional): project-relative paths a demo must not have created.

Every case then runs ``termlab check``, a strict build and a non-strict build as
subprocesses: none may print a traceback, and the non-strict build must still publish the
rest of the site.
"""

from __future__ import annotations

import html.parser
import os
import re
import runpy
import shutil
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
import yaml
from conftest import CATEGORIES, MKDOCS_YML

ROOT = Path(__file__).resolve().parents[1]
CORPUS = Path(__file__).resolve().parent / "corpus"
CASES = sorted(p.name for p in CORPUS.iterdir() if (p / "expect.yaml").is_file())

BASELINE = """\
term: Baseline
category: machine-learning
summary: Baseline in one sentence.
body: The long story of Baseline.
"""
PROBLEM_PREFIX = "WARNING -  termlab: "
TIMEOUT = 120  # seconds per subprocess; the slowest case (a 2 s demo timeout) needs ~5


def make_project(root: Path, case: str) -> Path:
    """The base project with the case's files laid over it (and its generated inputs)."""
    for folder in ("glossary", "demos", "docs"):
        (root / folder).mkdir(parents=True, exist_ok=True)
    (root / "glossary" / "_categories.yaml").write_text(CATEGORIES, "utf-8")
    (root / "glossary" / "baseline.yaml").write_text(BASELINE, "utf-8")
    (root / "mkdocs.yml").write_text(MKDOCS_YML.format(cache=root / ".cache"), "utf-8")
    files = CORPUS / case / "files"
    if files.is_dir():
        shutil.copytree(files, root, dirs_exist_ok=True)
    generate = CORPUS / case / "generate.py"
    if generate.is_file():
        runpy.run_path(str(generate))["generate"](root)
    return root


class _LiveMarkup(html.parser.HTMLParser):
    """What a browser would run or follow, as ``<tag attr onclick="…" href="scheme:…">`` plus
    script bodies. Text, comments, the values of other attributes and the content of
    <title>/<textarea> (read as text by browsers) are inert and left out."""

    URL_ATTRS = {"href", "src", "action", "formaction", "xlink:href", "data", "srcdoc"}
    RAW_TEXT = {"title", "textarea"}
    SCHEME = re.compile(r"[a-z][a-z0-9+.-]*:", re.I)

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []
        self.raw_text: str | None = None
        self.script = False

    def _attr(self, name: str, value: str | None) -> str:
        if name.startswith("on"):
            return f'{name}="…"'
        if name in self.URL_ATTRS:
            m = self.SCHEME.match(re.sub(r"[\x00-\x20\x7f]", "", value or ""))
            return f'{name}="{m.group(0) if m else ""}…"'
        return name

    def handle_starttag(self, tag: str, attrs: list) -> None:
        if self.raw_text:
            return
        self.parts.append(f"<{' '.join([tag, *(self._attr(k, v) for k, v in attrs)])}>")
        if tag in self.RAW_TEXT:
            self.raw_text = tag
        self.script = tag == "script"

    def handle_endtag(self, tag: str) -> None:
        if self.raw_text and tag != self.raw_text:
            return
        self.raw_text = None
        self.script = False
        self.parts.append(f"</{tag}>")

    def handle_data(self, data: str) -> None:
        if self.script:
            self.parts.append(data.strip())


def live_markup(page: str) -> str:
    parser = _LiveMarkup()
    parser.feed(page)
    parser.close()
    return "".join(parser.parts)


def expectations(case: str) -> dict:
    expect = yaml.safe_load((CORPUS / case / "expect.yaml").read_text("utf-8"))
    assert set(expect) <= {"check", "build", "html_must_not_contain", "must_not_exist"}, expect
    assert expect.get("check") == "ok" or isinstance(expect.get("check"), list), expect
    assert expect.get("build") == "ok" or isinstance(expect.get("build"), list), expect
    return expect


def run(*args: object, cwd: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "NO_MKDOCS_2_WARNING": "1", "PYTHONPATH": str(ROOT)}
    env.pop("TERMLAB_CACHE_DIR", None)
    return subprocess.run([sys.executable, *map(str, args)], cwd=cwd, env=env, capture_output=True,
                          text=True, errors="replace", timeout=TIMEOUT)


def build(root: Path, strict: bool) -> subprocess.CompletedProcess:
    """A build as a subprocess; the strict one writes to its own folder so both can run at once."""
    where = ["--strict", "-d", root / "site-strict"] if strict else []
    return run("-m", "mkdocs", "build", *where, "-f", root / "mkdocs.yml", cwd=root)


def traceback_in(what: str, proc: subprocess.CompletedProcess) -> list[str]:
    output = proc.stdout + proc.stderr
    return [f"{what} printed a traceback:\n{output[-6000:]}"] if "Traceback" in output else []


def listed(lines: list[str]) -> str:
    return "".join(f"\n    {line}" for line in lines)


@pytest.mark.parametrize("case", CASES)
def test_corpus_case(case: str, tmp_path: Path) -> None:
    expect = expectations(case)
    root = make_project(tmp_path / "project", case)
    failures: list[str] = []  # every step runs; the case reports all it got wrong at once

    # The three runs are independent, except that a case with demos builds non-strictly after
    # the strict build so that it reuses the demo results cached by it (a hang costs 2 s once).
    with ThreadPoolExecutor(3) as pool:
        check_run = pool.submit(run, "-m", "generator", "--root", root, "check", cwd=root)
        strict_run = pool.submit(build, root, True)
        has_demos = (CORPUS / case / "files" / "demos").is_dir()
        loose_run = None if has_demos else pool.submit(build, root, False)
        check, strict = check_run.result(), strict_run.result()
        loose = loose_run.result() if loose_run else build(root, False)

    # 1. termlab check: exactly the expected problem lines, each with file:line.
    failures += traceback_in("termlab check", check)
    printed = check.stderr.splitlines()
    if expect["check"] == "ok":
        if check.returncode != 0:
            failures.append(f"termlab check exited {check.returncode}, expected 0; it printed:"
                            + listed(printed))
    else:
        n = len(expect["check"])
        missing = [line for line in expect["check"] if line not in printed]
        if check.returncode != 1 or missing or printed[-1:] != [f"{n} problem{'s' if n != 1 else ''} found"]:
            failures.append(f"termlab check exited {check.returncode}"
                            + (" (expected 1)" if check.returncode != 1 else "")
                            + (f"; missing lines:{listed(missing)}" if missing else "")
                            + f"\n  it printed:{listed(printed)}")

    # 2. Strict build: fails, its log names every problem where it is, and nothing else warns.
    failures += traceback_in("the strict build", strict)
    log = strict.stdout + strict.stderr
    warnings = [line for line in log.splitlines() if line.startswith(("WARNING", "ERROR"))]
    if expect["build"] == "ok":
        if strict.returncode != 0:
            failures.append(f"the strict build should succeed; it warned:{listed(warnings)}")
    else:
        missing = [s for s in expect["build"] if s not in log]
        if strict.returncode == 0 or missing:
            failures.append(f"the strict build exited {strict.returncode}"
                            + (" (expected non-zero)" if strict.returncode == 0 else "")
                            + (f"; its log lacks:{listed(missing)}" if missing else "")
                            + f"\n  it warned:{listed(warnings)}")
    # No echo of a mistake as a MkDocs warning about a generated page the author never wrote.
    stray = [line for line in warnings if not line.startswith(PROBLEM_PREFIX)]
    if stray:
        failures.append(f"the strict build logged warnings that are not termlab problems:{listed(stray)}")

    # 3. Non-strict build: succeeds, and the rest of the site is still there.
    failures += traceback_in("the non-strict build", loose)
    site = root / "site"
    if loose.returncode != 0:
        failures.append(f"the non-strict build failed:\n{(loose.stdout + loose.stderr)[-6000:]}")
    elif not (site / "terms" / "baseline" / "index.html").is_file():
        failures.append("the non-strict build did not publish terms/baseline/index.html")
    pages = {p.relative_to(site).as_posix(): live_markup(p.read_text("utf-8", errors="replace"))
             for p in sorted(site.rglob("*.html"))} if site.is_dir() else {}
    for bad in expect.get("html_must_not_contain") or []:
        found = [f"{rel}: …{markup[max(0, m.start() - 60):m.end() + 40]}…"
                 for rel, markup in pages.items() for m in re.finditer(re.escape(bad), markup)]
        if found:
            failures.append(f"{bad!r} is live markup (not escaped text):{listed(found)}")
    for rel in expect.get("must_not_exist") or []:
        if (root / rel).exists():
            failures.append(f"{rel} was created")

    if failures:
        pytest.fail(f"corpus case {case}:\n" + "\n".join(f"- {f}" for f in failures), pytrace=False)
