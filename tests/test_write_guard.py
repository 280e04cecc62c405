"""The write guard of a demo process: the kernel's (Landlock) where it has one, else an audit
hook. Each check runs in its own process, since neither guard can be lifted once set."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

PROBE = textwrap.dedent("""
    import json, subprocess, sys
    from pathlib import Path
    from generator.demo.runtime.guard import WriteGuard

    allowed, outside, kernel = Path(sys.argv[1]), Path(sys.argv[2]), sys.argv[3] == "kernel"
    guard = WriteGuard((allowed,), kernel=kernel)
    seen = {"kernel": guard.kernel}
    (allowed / "inside.txt").write_text("ok")
    (allowed / "sub").mkdir()
    try:
        outside.write_text("no")
        seen["outside"] = "written"
    except PermissionError as exc:
        seen["outside"] = guard.explain(exc) or str(exc)
    subprocess.run(["sh", "-c", f"echo no > {outside}.sh"], capture_output=True)
    seen["subprocess_wrote"] = Path(f"{outside}.sh").exists()
    print(json.dumps(seen))
""")


def _probe(tmp_path: Path, kernel: bool) -> dict:
    allowed = tmp_path / "allowed"
    allowed.mkdir()
    outside = tmp_path / "repo-file.txt"
    root = str(Path(__file__).resolve().parents[1])
    done = subprocess.run([sys.executable, "-c", PROBE, str(allowed), str(outside),
                           "kernel" if kernel else "hook"],
                          capture_output=True, text=True, cwd=root, env={"PYTHONPATH": root, "PATH": "/usr/bin:/bin"})
    assert done.returncode == 0, done.stderr
    seen = json.loads(done.stdout)
    assert (allowed / "inside.txt").read_text() == "ok"
    assert not outside.exists()
    return seen


def _kernel_has_landlock() -> bool:
    done = subprocess.run([sys.executable, "-c", "import pathlib; from generator.demo.runtime import landlock;"
                           "print(landlock.restrict_writes([pathlib.Path('/tmp')]))"],
                          capture_output=True, text=True, cwd=str(Path(__file__).resolve().parents[1]))
    return done.stdout.strip() == "True"


def test_kernel_guard_refuses_outside_writes_from_python_and_subprocesses(tmp_path):
    if not _kernel_has_landlock():
        pytest.skip("this kernel has no Landlock; the audit-hook guard below still runs")
    seen = _probe(tmp_path, kernel=True)
    assert seen["kernel"] is True
    assert seen["outside"].startswith("demo tried to write ") and "repo-file.txt" in seen["outside"]
    assert "outside its output folder" in seen["outside"]
    assert seen["subprocess_wrote"] is False  # the kernel's limit holds for children too


def test_audit_hook_guard_refuses_outside_writes_where_the_kernel_cannot(tmp_path):
    seen = _probe(tmp_path, kernel=False)
    assert seen["kernel"] is False
    assert seen["outside"].startswith("demo tried to write ") and "repo-file.txt" in seen["outside"]
