"""A persistent worker: imports the heavy libraries once, then forks one child per demo.

Protocol: the parent writes one JSON job a line on stdin; the worker answers one JSON line
on stdout. The child's own output never reaches this pipe (it goes to a file).
"""

from __future__ import annotations

import contextlib
import json
import os
import select
import shutil
import signal
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from .child import ERROR_FILE, OUTPUT_FILE

SIGNALS = {
    signal.SIGSEGV: "crashed with a segmentation fault (SIGSEGV)",
    signal.SIGABRT: "aborted (SIGABRT: os.abort() or a failed assertion in native code)",
    signal.SIGKILL: "was killed (SIGKILL), most likely for using too much memory",
    signal.SIGXFSZ: "wrote a file larger than 256 MB and was stopped (SIGXFSZ)",
    signal.SIGBUS: "crashed with a bus error (SIGBUS)",
    signal.SIGFPE: "crashed with a floating-point exception (SIGFPE)",
}


def warm_up() -> None:
    """Import what demos use so each forked child starts with it loaded."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.figure  # noqa: F401
    import matplotlib.pyplot  # noqa: F401
    import numpy  # noqa: F401
    import onnx  # noqa: F401
    import onnx.helper  # noqa: F401
    import onnx.numpy_helper  # noqa: F401
    import onnxruntime  # noqa: F401

    from . import context  # noqa: F401


def run_job(job: dict[str, Any]) -> dict[str, Any]:
    """Fork a child for one demo, wait for it with a timeout, describe how it ended."""
    out = Path(job["out"])
    timeout = float(job.get("timeout") or 120)
    sys.stdout.flush()
    scratch = tempfile.mkdtemp(prefix="termlab-demo-")
    job = {**job, "scratch": scratch}
    start = time.monotonic()
    pid = os.fork()
    if pid == 0:
        from .child import main

        main(job)
    timed_out = not _wait(pid, timeout)
    if timed_out:
        _kill_group(pid)
    _, status, usage = os.wait4(pid, 0)
    _kill_group(pid)  # anything the demo started in its session goes too
    shutil.rmtree(scratch, ignore_errors=True)
    seconds = time.monotonic() - start
    reply: dict[str, Any] = {"id": job["id"], "seconds": round(seconds, 3),
                             "cpu_seconds": round(usage.ru_utime + usage.ru_stime, 3)}
    error_file = out / ERROR_FILE
    if timed_out:
        reply["error"] = {"kind": "Timeout", "line": 0, "message":
                          f"timed out after {timeout:g} s and was killed; make the demo faster "
                          "or raise `timeout:` in the entry's demo options"}
    elif error_file.exists():
        reply["error"] = json.loads(error_file.read_text())
    elif os.WIFSIGNALED(status):
        sig = os.WTERMSIG(status)
        what = SIGNALS.get(sig, f"was killed by signal {signal.Signals(sig).name}")
        reply["error"] = {"kind": "Crash", "line": 0, "message": f"the demo process {what}"}
    elif os.WEXITSTATUS(status) != 0 or not (out / "outputs.json").exists():
        reply["error"] = {"kind": "Crash", "line": 0, "message":
                          f"the demo process exited with code {os.WEXITSTATUS(status)} "
                          "before saving its outputs"}
    output = out / OUTPUT_FILE
    reply["output"] = output.read_text("utf-8", errors="replace")[-25_000:] if output.exists() else ""
    return reply


def _wait(pid: int, timeout: float) -> bool:
    """True when the child ended within ``timeout`` seconds."""
    fd = os.pidfd_open(pid)
    try:
        ready, _, _ = select.select([fd], [], [], timeout)
        return bool(ready)
    finally:
        os.close(fd)


def _kill_group(pid: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pid, signal.SIGKILL)


def main() -> None:
    warm_up()
    print(json.dumps({"ready": os.getpid()}), flush=True)
    for line in sys.stdin:
        if not line.strip():
            continue
        job = json.loads(line)
        try:
            reply = run_job(job)
        except Exception as exc:  # noqa: BLE001 - the worker must keep serving
            reply = {"id": job.get("id"), "error": {"kind": "WorkerError", "line": 0,
                                                    "message": f"the worker failed: {exc}"}}
        print(json.dumps(reply), flush=True)


if __name__ == "__main__":
    main()
