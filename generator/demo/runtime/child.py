"""What runs inside the forked child: load one demo file, call ``run(demo)``, save outputs.

Everything the demo can break stays in this process: it gets its own session, a scratch
working directory, a memory limit, and its stdout/stderr go to a size-limited file.
"""

from __future__ import annotations

import contextlib
import faulthandler
import importlib.util
import json
import os
import resource
import sys
import tempfile
import traceback
from dataclasses import asdict
from pathlib import Path

from ..protocol import FILE_LIMIT_BYTES, Job, RunError
from . import reaper
from .context import DemoContext
from .guard import WriteGuard

OUTPUT_FILE = "output.txt"
STACK_FILE = "stack.txt"
ERROR_FILE = "error.json"


class _LimitedWriter:
    """A text stream that keeps the first ``limit`` characters and counts the rest."""

    def __init__(self, fd: int, limit: int):
        self.stream = open(fd, "w", encoding="utf-8", errors="replace", closefd=False)  # noqa: SIM115
        self.left = limit
        self.dropped = 0

    def write(self, text: str) -> int:
        if self.left > 0:
            self.stream.write(text[: self.left])
        self.dropped += max(0, len(text) - max(self.left, 0))
        self.left -= len(text)
        return len(text)

    def flush(self) -> None:
        self.stream.flush()

    def isatty(self) -> bool:
        return False


def main(job: Job) -> None:
    """Run one demo and exit; never returns."""
    code = 0
    reaper.become_subreaper()  # whatever the demo starts becomes ours to end
    try:
        _run(job)
    except BaseException:  # noqa: BLE001 - the last line of defence; report and exit
        code = 70
    finally:
        with contextlib.suppress(Exception):
            reaper.end_children()
        for stream in (sys.stdout, sys.stderr):
            with contextlib.suppress(Exception):
                stream.flush()
        os._exit(code)


def _run(job: Job) -> None:
    os.setsid()
    out = Path(job.out)
    demos_dir = Path(job.demos_dir)
    fd = os.open(out / OUTPUT_FILE, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    os.dup2(fd, 1)
    os.dup2(fd, 2)
    os.close(fd)
    writer = _LimitedWriter(1, job.output_chars)
    sys.stdout = sys.stderr = writer
    # Where a crash or a hang happened: the stack on a fatal signal, or just before the kill.
    stack = open(out / STACK_FILE, "w")  # noqa: SIM115 - open until the process ends
    faulthandler.enable(file=stack)
    faulthandler.dump_traceback_later(max(job.timeout - 0.25, 0.05), file=stack)
    limit = job.memory_mb * 1024 * 1024
    resource.setrlimit(resource.RLIMIT_AS, (_address_space() + limit,) * 2)
    resource.setrlimit(resource.RLIMIT_FSIZE, (FILE_LIMIT_BYTES,) * 2)
    scratch = job.scratch or tempfile.mkdtemp(prefix="termlab-demo-")
    os.chdir(scratch)
    tempfile.tempdir = os.environ["TMPDIR"] = scratch  # temporary files go there too
    sys.path.insert(0, str(demos_dir))
    guard = WriteGuard((out, Path(scratch)))
    path = Path(job.path)
    try:
        module = _load(path, job.name)
        run = getattr(module, "run", None)
        if not callable(run):
            _fail(out, path, 1, f"{path.name} defines no run(demo) function; add `def run(demo): ...`", "")
            return
        demo = DemoContext(job.name, out, job.options, str(path), audit=job.audit)
        run(demo)
        demo.save()
    except SyntaxError as exc:
        _fail(out, Path(exc.filename or path), exc.lineno or 1, f"syntax error: {exc.msg}",
              "".join(traceback.format_exception_only(exc)))
    except SystemExit as exc:
        where = _where(exc, demos_dir, path)
        _fail(out, *where, f"demo called sys.exit({exc.code!r}); return from run() instead", _tb(exc, demos_dir))
    except MemoryError as exc:
        where = _where(exc, demos_dir, path)
        _fail(out, *where, f"demo ran out of memory (limit {job.memory_mb} MB); "
              "use smaller arrays or raise memory_limit_mb", _tb(exc, demos_dir))
    except BaseException as exc:  # noqa: BLE001 - any failure of the demo is reported
        where = _where(exc, demos_dir, path)
        message = guard.explain(exc) or str(exc) or type(exc).__name__
        _fail(out, *where, message, _tb(exc, demos_dir))
    finally:
        faulthandler.cancel_dump_traceback_later()
        if writer.dropped:
            writer.stream.write(f"\n[termlab: {writer.dropped} more characters of output dropped]\n")
        writer.flush()


def _address_space() -> int:
    """Bytes of address space this process already has (the limit comes on top)."""
    with open("/proc/self/statm") as f:
        return int(f.read().split()[0]) * resource.getpagesize()


def _load(path: Path, name: str):
    spec = importlib.util.spec_from_file_location(f"termlab_demo_{name}", path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


def _where(exc: BaseException, demos_dir: Path, path: Path) -> tuple[Path, int]:
    """Where the error names (a claim found unlabelled at the end of the run), else the
    innermost frame inside ``demos/`` (the demo or a helper it imports)."""
    named = getattr(exc, "where", None)
    if named and named[1]:
        return Path(named[0]), int(named[1])
    root = str(demos_dir.resolve())
    found = (path, 1)
    for frame in traceback.extract_tb(exc.__traceback__):
        if str(Path(frame.filename).resolve()).startswith(root):
            found = (Path(frame.filename), frame.lineno or 1)
    return found


def _tb(exc: BaseException, demos_dir: Path) -> str:
    """A short traceback: only frames in demos/, then the exception line."""
    root = str(demos_dir.resolve())
    frames = [f for f in traceback.extract_tb(exc.__traceback__)
              if str(Path(f.filename).resolve()).startswith(root)]
    lines = traceback.format_list(frames[-6:])
    return "".join(lines + traceback.format_exception_only(exc))[-4000:]


def _fail(out: Path, path: Path, line: int, message: str, trace: str) -> None:
    error = RunError(message[:2000], str(path), line, trace)
    (out / ERROR_FILE).write_text(json.dumps(asdict(error)))
