"""The warm worker: imports the heavy libraries once, then forks one child per demo, running
up to ``--slots`` children at a time (one per core by default).

Protocol: the parent writes one JSON job a line on stdin; the worker answers one JSON line per
job on stdout as each finishes (in completion order). A child's own output never reaches this
pipe: it goes to a file. When stdin closes, running children are killed and the worker exits.
"""

from __future__ import annotations

import argparse
import contextlib
import gc
import json
import os
import re
import select
import shutil
import signal
import sys
import tempfile
import time
from collections import deque
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..protocol import Job, Reply, RunError
from . import reaper
from .child import ERROR_FILE, OUTPUT_FILE, STACK_FILE

_FRAME = re.compile(r'^\s*File "(.+)", line (\d+)', re.M)

SIGNALS = {
    signal.SIGSEGV: "crashed with a segmentation fault (SIGSEGV)",
    signal.SIGABRT: "aborted (SIGABRT: os.abort() or a failed assertion in native code)",
    signal.SIGKILL: "was killed (SIGKILL), most likely for using too much memory",
    signal.SIGXFSZ: "wrote a file larger than 256 MB and was stopped (SIGXFSZ)",
    signal.SIGBUS: "crashed with a bus error (SIGBUS)",
    signal.SIGFPE: "crashed with a floating-point exception (SIGFPE)",
}


def warm_up(preload: list[str]) -> None:
    """Import what the demos use (numpy and matplotlib always, plus ``preload``: the modules
    the pending demos import) so each forked child starts with it loaded.

    The collector stays off while importing (imports make objects, not garbage: collections
    there only cost time), and everything imported is then frozen out of its reach, so a
    child's GC does not touch (and so copy) every inherited page. Children collect normally."""
    import importlib

    gc.disable()

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.figure  # noqa: F401
    import numpy  # noqa: F401

    from . import context  # noqa: F401

    for name in preload:
        with contextlib.suppress(Exception):  # a demo that imports a missing module says so itself
            importlib.import_module(name)

    gc.freeze()
    gc.enable()


def prepare_figures() -> None:
    """Do once what every demo would otherwise do in its own child: import what a seeded
    generator and a saved figure need (numpy and PIL load these lazily), and build
    mathtext's grammar, which every log-scale axis parses its tick labels with.
    (~40 ms here; it saved 10-40 ms in each child.)"""
    gc.disable()
    import matplotlib.backends.backend_agg  # noqa: F401
    import matplotlib.backends.backend_svg  # noqa: F401
    import numpy.random  # noqa: F401
    from matplotlib import mathtext
    from PIL import Image

    Image.preinit()
    mathtext.MathTextParser("path").parse(r"$\mathdefault{10^{-1}}$")
    gc.freeze()
    gc.enable()


@dataclass
class Running:
    """A demo child in flight."""

    job: Job
    pid: int
    pidfd: int
    scratch: str
    start: float
    deadline: float


def start(job: Job) -> Running:
    """Fork a child for one demo."""
    sys.stdout.flush()
    scratch = tempfile.mkdtemp(prefix="termlab-demo-")
    job = job.with_scratch(scratch)
    now = time.monotonic()
    pid = os.fork()
    if pid == 0:
        from .child import main

        main(job)
    return Running(job, pid, os.pidfd_open(pid), scratch, now, now + job.timeout)


def finish(run: Running, timed_out: bool) -> Reply:
    """Reap a child (killing it and its session on timeout) and describe how it ended."""
    if timed_out:
        _kill_group(run.pid)
    _, status, usage = os.wait4(run.pid, 0)
    os.close(run.pidfd)
    _kill_group(run.pid)  # anything the demo started in its session goes too
    shutil.rmtree(run.scratch, ignore_errors=True)
    out = Path(run.job.out)
    error = None
    if timed_out:
        error = RunError(f"timed out after {run.job.timeout:g} s and was killed; make the demo "
                         "faster or raise `timeout:` in the entry's demo options")
    elif (out / ERROR_FILE).exists():
        error = RunError(**json.loads((out / ERROR_FILE).read_text()))
    elif os.WIFSIGNALED(status):
        sig = os.WTERMSIG(status)
        error = RunError(f"the demo process {SIGNALS.get(sig, f'was killed by signal {signal.Signals(sig).name}')}")
    elif os.WEXITSTATUS(status) != 0 or not (out / "outputs.json").exists():
        error = RunError(f"the demo process exited with code {os.WEXITSTATUS(status)} "
                         "before saving its outputs")
    if error is not None and not error.file:
        error.file, error.line = _where(out / STACK_FILE, run.job.demos_dir)
    output = out / OUTPUT_FILE
    return Reply(run.job.id, seconds=round(time.monotonic() - run.start, 3),
                 cpu_seconds=round(usage.ru_utime + usage.ru_stime, 3),
                 output=output.read_text("utf-8", errors="replace")[-25_000:] if output.exists() else "",
                 error=error)


def _where(stack: Path, demos_dir: str) -> tuple[str, int]:
    """The innermost demos/ frame faulthandler wrote (most recent call first), if any."""
    try:
        text = stack.read_text("utf-8", errors="replace")
    except OSError:
        return "", 0
    root = str(Path(demos_dir).resolve()) + os.sep
    for path, line in _FRAME.findall(text):
        if os.path.realpath(path).startswith(root):
            return path, int(line)
    return "", 0


def _kill_group(pid: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pid, signal.SIGKILL)


def serve(slots: int) -> None:
    """Read jobs, keep up to ``slots`` children running, answer as each one ends."""
    pending: deque[Job] = deque()
    running: dict[int, Running] = {}
    buffer = b""
    stdin_open = True
    while stdin_open or pending or running:
        while pending and len(running) < slots:
            job = pending.popleft()
            try:
                run = start(job)
            except OSError as exc:
                _reply(Reply(job.id, error=RunError(f"could not start the demo: {exc}")))
                continue
            running[run.pidfd] = run
        now = time.monotonic()
        timeout = max(0.0, min(r.deadline for r in running.values()) - now) if running else None
        fds = ([0] if stdin_open else []) + list(running)
        ready, _, _ = select.select(fds, [], [], timeout)
        for fd in ready:
            if fd == 0:
                chunk = os.read(0, 65536)
                if not chunk:
                    stdin_open = False
                    for run in running.values():  # the build is gone: stop its demos
                        _kill_group(run.pid)
                    continue
                buffer += chunk
                *lines, buffer = buffer.split(b"\n")
                for message in (json.loads(line) for line in lines if line.strip()):
                    if "preload" in message:  # more imports, before the jobs that need them
                        warm_up(message["preload"])
                    else:
                        pending.append(Job.from_json(message))
            else:
                _reply(finish(running.pop(fd), timed_out=False))
                reaper.end_children(keep={r.pid for r in running.values()})
        now = time.monotonic()
        for fd in [fd for fd, r in running.items() if r.deadline <= now]:
            _reply(finish(running.pop(fd), timed_out=True))
            # What the killed demo had started (in a session of its own) is ours now.
            reaper.end_children(keep={r.pid for r in running.values()})


def _reply(reply: Reply | dict[str, Any]) -> None:
    sys.stdout.write(reply.to_line() if isinstance(reply, Reply) else json.dumps(reply) + "\n")
    sys.stdout.flush()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--slots", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--preload", default="", help="comma-separated modules to import first")
    args = parser.parse_args()
    slots = args.slots
    reaper.become_subreaper()
    warm_up([m for m in args.preload.split(",") if m])
    prepare_figures()
    _reply({"ready": os.getpid(), "slots": slots})
    with contextlib.suppress(BrokenPipeError):
        serve(slots)
        sys.stdout.flush()
    # Nothing is left to clean up; tearing down numpy, matplotlib and the rest module by module
    # would only keep the build waiting.
    os._exit(0)


if __name__ == "__main__":
    main()
