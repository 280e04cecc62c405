"""`mkdocs serve` survives mistakes: the error shows on the page, a fix recovers it live."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import urllib.request

from conftest import MKDOCS_YML, entry

GOOD_DEMO = "def run(demo):\n    demo.metric('answer', 42, label='The answer')\n"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def fetch(url: str) -> str:
    try:
        with urllib.request.urlopen(url, timeout=5) as response:
            return response.read().decode()
    except OSError:
        return ""


def wait_for(url: str, text: str, proc: subprocess.Popen, timeout: float = 60) -> str:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert proc.poll() is None, "mkdocs serve exited"
        page = fetch(url)
        if text in page:
            return page
        time.sleep(0.3)
    raise AssertionError(f"{text!r} never appeared at {url}")


def test_serve_shows_errors_and_recovers_without_restart(project):
    project.write("demos/answer.py", GOOD_DEMO)
    project.write("glossary/x.yaml", entry("X", body="The answer is {{answer}}.") + "demo: answer\n")
    project.write("mkdocs.yml", MKDOCS_YML.format(cache=project.root / ".cache"))
    project.write("docs/.keep", "")
    port = free_port()
    proc = subprocess.Popen([sys.executable, "-m", "mkdocs", "serve", "-a",
                             f"127.0.0.1:{port}"], cwd=project.root, stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE, env={**os.environ, "NO_MKDOCS_2_WARNING": "1"})
    url = f"http://127.0.0.1:{port}/glossary/terms/x/"  # site_url in MKDOCS_YML ends in /glossary/
    try:
        wait_for(url, "The answer is 42.", proc)
        seen = ["first build: 'The answer is 42.'"]

        project.write("glossary/x.yaml", "term: [broken\n")
        page = wait_for(url, "This entry could not be read", proc)
        assert "glossary/x.yaml:1: malformed YAML" in page
        seen.append("broken YAML: 'This entry could not be read' with glossary/x.yaml:1")

        project.write("glossary/x.yaml", entry("X", body="The answer is {{answer}}.") + "demo: answer\n")
        wait_for(url, "The answer is 42.", proc)
        seen.append("fixed YAML: page back")

        project.write("demos/answer.py", "def run(demo):\n    raise ValueError('demo broke')\n")
        page = wait_for(url, "demo broke", proc)
        assert "The demo <code>answer</code> failed" in page
        seen.append("broken demo: failure admonition with the error")

        project.write("demos/answer.py", GOOD_DEMO.replace("42", "43"))
        wait_for(url, "The answer is 43.", proc)
        seen.append("fixed demo: rerun, new number on the page")
        assert proc.poll() is None
        print("\n".join(seen))
    finally:
        proc.terminate()
        proc.wait(timeout=30)


SLOW_AUDIT_DEMO = """
import time

def run(demo):
    if demo.options.get("seed"):  # an audited run (the own run has no seed option): slow
        time.sleep(1.5)
    demo.metric("answer", 42, label="The answer")
    demo.claim("The answer is positive", True)
"""


def test_serve_fills_in_hold_rates_when_the_audit_is_done(project):
    """Serve shows the page before the audit is in, then builds again by itself when it is."""
    project.write("demos/answer.py", SLOW_AUDIT_DEMO)
    project.write("glossary/x.yaml", entry("X", body="The answer is {{answer}}.") + "demo: answer\n")
    project.write("mkdocs.yml", MKDOCS_YML.format(cache=project.root / ".cache")
                  .replace("audit_seeds: 0", "audit_seeds: 2"))
    project.write("docs/.keep", "")
    port = free_port()
    proc = subprocess.Popen([sys.executable, "-m", "mkdocs", "serve", "-a",
                             f"127.0.0.1:{port}"], cwd=project.root, stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE, env={**os.environ, "NO_MKDOCS_2_WARNING": "1"})
    url = f"http://127.0.0.1:{port}/glossary/terms/x/"
    try:
        first = wait_for(url, "The answer is 42.", proc)
        assert "held in" not in first  # served before the audit (2 runs × 1.5 s) is in
        wait_for(url, "held in 3 of 3 seeds", proc)  # no edit: the audit's end triggered it
        assert proc.poll() is None
    finally:
        proc.terminate()
        proc.wait(timeout=30)


def test_serve_builds_once_per_edit_not_on_its_own_reads(project, tmp_path):
    """termlab watches its folders natively; a build that reads the entries and demos must not
    set off the next build (watchdog reports opened and read files too)."""
    project.write("demos/answer.py", GOOD_DEMO)
    project.write("glossary/x.yaml", entry("X", body="The answer is {{answer}}.") + "demo: answer\n")
    project.write("mkdocs.yml", MKDOCS_YML.format(cache=project.root / ".cache"))
    project.write("docs/.keep", "")
    port, log = free_port(), tmp_path / "serve.log"
    with log.open("w") as out:
        proc = subprocess.Popen([sys.executable, "-m", "mkdocs", "serve", "--dirty", "-a", f"127.0.0.1:{port}"],
                                cwd=project.root, stdout=out, stderr=subprocess.STDOUT,
                                env={**os.environ, "NO_MKDOCS_2_WARNING": "1"})
    url = f"http://127.0.0.1:{port}/glossary/terms/x/"
    try:
        wait_for(url, "The answer is 42.", proc)
        time.sleep(3)  # several build lengths: a build set off by its own reads would show by now
        assert log.read_text().count("Building documentation") == 1, log.read_text()
        project.write("glossary/x.yaml", entry("X", body="The answer is {{answer}}, said X.") + "demo: answer\n")
        wait_for(url, "said X.", proc)
        time.sleep(3)
        assert log.read_text().count("Building documentation") == 2, log.read_text()
    finally:
        proc.terminate()
        proc.wait(timeout=30)
