"""Hostile and odd input (issue 13): nothing a demo starts outlives it, odd files and names
are refused with a located message, entry text never becomes live markup."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest
from conftest import entry

from generator.demo.engine import DemoEngine
from generator.model import DemoSpec

SLEEPER = '''
import subprocess, sys
def run(demo):
    p = subprocess.Popen(["sleep", "1000"], start_new_session=True)
    print("sleeper", p.pid, flush=True)
    demo.metric("pid", p.pid)
'''
HANGER = SLEEPER.replace('demo.metric("pid", p.pid)', 'import time\n    time.sleep(60)')


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return False
    return state != "Z"


def _pid(output: str) -> int:
    return int(output.split("sleeper", 1)[1].split()[0])


def test_nothing_a_demo_starts_outlives_it(project):
    """A process the demo starts in a session of its own escapes a process-group kill; the
    demo child and the worker are subreapers and end it, when the demo returns and when it
    is killed for its time."""
    project.write("demos/sleeper.py", SLEEPER)
    project.write("demos/hanger.py", HANGER)
    engine = DemoEngine(project.root / ".cache", 2)
    try:
        results = engine.run({"sleeper": DemoSpec("sleeper", project.demos / "sleeper.py"),
                              "hanger": DemoSpec("hanger", project.demos / "hanger.py", timeout=3.0)},
                             project.demos, timeout=30, memory_mb=512)
    finally:
        engine.close()
    assert results["sleeper"].error is None
    assert "timed out" in results["hanger"].error
    pids = [_pid(results["sleeper"].output), _pid(results["hanger"].output)]
    deadline = time.monotonic() + 5
    while any(map(_alive, pids)) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not [p for p in pids if _alive(p)], "a process a demo started outlived the build"


def test_a_process_s_children_are_found_with_and_without_the_kernel_s_children_files():
    """The reaper reads each thread's ``children`` file; a kernel without them (no
    CONFIG_PROC_CHILDREN) is read process by process, with the same answer. (In a process of
    its own: the test run has children of its own.)"""
    import subprocess
    import sys

    script = """
import builtins, os, subprocess
from generator.demo.runtime import reaper
sleepers = sorted(subprocess.Popen(["sleep", "30"]).pid for _ in range(3))
found = sorted(reaper.children(os.getpid()))
real_open = builtins.open
def no_children_files(path, *args, **kwargs):
    if str(path).endswith("/children"):
        raise FileNotFoundError(path)
    return real_open(path, *args, **kwargs)
builtins.open = no_children_files
scanned = sorted(reaper.children(os.getpid()))
builtins.open = real_open
reaper.end_children()
print(sleepers == found == scanned, sleepers, found, scanned)
"""
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60)
    assert done.stdout.startswith("True"), done.stdout + done.stderr


@pytest.mark.parametrize("make, message", [
    (lambda p: os.mkfifo(p), "is a named pipe, not a regular file"),
    (lambda p: p.mkdir(), "is a folder, not a regular file"),
    (lambda p: p.symlink_to("/nonexistent/entry.yaml"), "is a symbolic link to a file that does not exist"),
    (lambda p: p.symlink_to("/dev/zero"), "is a device, not a regular file"),
])
def test_odd_files_in_the_glossary_are_refused_with_a_fix(project, make, message):
    make(project.glossary / "odd.yaml")
    project.term("fine", "Fine")
    problems = project.problems()
    assert len(problems) == 1 and problems[0].startswith(f"glossary/odd.yaml:1: {message}")


def test_an_endless_file_stops_at_the_size_limit(project, tmp_path, monkeypatch):
    from generator.read import yamlnodes

    monkeypatch.setattr(yamlnodes, "MAX_BYTES", 10)
    growing = tmp_path / "grows.yaml"
    growing.write_text("term: A\n")
    real_open = open

    def opened(path, mode="r", *args, **kwargs):  # the file grows after its size was read
        if str(path) == str(growing):
            growing.write_text("term: A\n" * 10)
        return real_open(path, mode, *args, **kwargs)

    monkeypatch.setattr("builtins.open", opened)
    with pytest.raises(yamlnodes.YamlProblem, match="grew while being read"):
        yamlnodes.read_text(growing)


def test_the_same_id_in_two_files_is_named(project):
    project.term("x", "X")
    project.write("glossary/x.yml", entry("Other X"))
    assert project.problems() == [
        "glossary/x.yml:1: the id 'x' is also defined by glossary/x.yaml; keep one of the two files"]


def test_names_compare_after_unicode_normalisation(project):
    project.term("cafe", "Zz café", body="See [[Zz cafe\u0301]] and [[ZZ CAFÉ]].")
    assert project.problems() == []


def test_invisible_and_bidi_characters_in_names_are_refused(project):
    project.term("a", "Zz\u200bcafe", aliases=["x\u202ey"])
    problems = project.problems()
    assert any("glossary/a.yaml:1: term: " in p and "U+200B ZERO WIDTH SPACE" in p for p in problems)
    assert any(": aliases: " in p and "U+202E RIGHT-TO-LEFT OVERRIDE" in p for p in problems)


def test_a_former_id_that_is_another_terms_alias_is_named(project):
    project.term("alpha", "Alpha", redirect_from=["foo"])
    project.term("beta", "Beta", aliases=["Foo"])
    (problem,) = project.problems()
    assert problem.startswith("glossary/alpha.yaml:6: redirect_from: terms/foo/ already belongs "
                              "to 'beta' (the alias 'Foo' of glossary/beta.yaml)")


@pytest.mark.parametrize("demo, message", [
    ("{name: d, since: 2020-01-01}", "option since is a date; quote it to make it text"),
    ("{name: d, opts: {1: 2, a: 3}}", "option opts has the key 1 (a number); write keys as text"),
    ("{name: d, timeout: .nan}", "timeout nan must be a number of seconds"),
    ("{name: d, x: .inf}", "option x is inf, which JSON cannot hold"),
])
def test_demo_options_must_be_json_values(project, demo, message):
    project.write("demos/d.py", "def run(demo):\n    demo.metric('x', 1)\n")
    project.write("glossary/a.yaml", entry("A") + f"demo: {demo}\n")
    (problem,) = project.problems()
    assert problem.startswith("glossary/a.yaml:5: demo: ") and message in problem, problem


def test_a_placeholder_problem_points_at_its_own_line_not_a_code_example(project):
    project.write("glossary/a.yaml", entry("A", body="Example: `{{x}}` in code.\n\nThe value is {{nothing}}.\n"))
    (problem,) = project.problems()  # a term without a demo: reported when its entry is read
    assert problem.startswith("glossary/a.yaml:7: body: placeholder {{nothing}}"), problem


@pytest.mark.parametrize("setting, ok", [
    ("timeout: 120", True), ("timeout: 0.5", True), ("jobs: 1", True),
    ("timeout: -5.0", False), ("timeout: .nan", False), ("memory_limit_mb: 0", False), ("jobs: -1", False),
])
def test_plugin_settings_are_checked_with_ranges(project, caplog_mkdocs, setting, ok):
    """MkDocs' own option types accept an int where a float is meant and any sign; termlab
    checks the range and names the setting and the file."""
    from mkdocs.exceptions import Abort, PluginError

    project.term("a", "A")
    project.write("mkdocs.yml", f"site_name: x\ndocs_dir: docs\nplugins:\n  - termlab:\n"
                  f"      cache_dir: {project.root / '.cache'}\n      {setting}\n")
    if ok:
        assert (project.build() / "terms" / "a" / "index.html").is_file()
        return
    with pytest.raises((PluginError, Abort)):
        project.build()
    name = setting.split(":")[0]
    assert f"mkdocs.yml: plugins: termlab: termlab setting {name}: " in caplog_mkdocs.text
    assert "Traceback" not in caplog_mkdocs.text
