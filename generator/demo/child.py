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
from pathlib import Path
from typing import Any

from . import landlock
from .context import DemoContext

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


def main(job: dict[str, Any]) -> None:
    """Run one demo and exit; never returns."""
    code = 0
    try:
        _run(job)
    except BaseException:  # noqa: BLE001 - the last line of defence; report and exit
        code = 70
    finally:
        for stream in (sys.stdout, sys.stderr):
            with contextlib.suppress(Exception):
                stream.flush()
        os._exit(code)


def _run(job: dict[str, Any]) -> None:
    os.setsid()
    out = Path(job["out"])
    demos_dir = Path(job["demos_dir"])
    fd = os.open(out / OUTPUT_FILE, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    os.dup2(fd, 1)
    os.dup2(fd, 2)
    os.close(fd)
    writer = _LimitedWriter(1, int(job.get("output_limit", 20_000)))
    sys.stdout = sys.stderr = writer
    # Where a crash or a hang happened: the stack on a fatal signal, or just before the kill.
    stack = open(out / STACK_FILE, "w")  # noqa: SIM115 - open until the process ends
    faulthandler.enable(file=stack)
    faulthandler.dump_traceback_later(max(float(job.get("timeout") or 120) - 0.25, 0.05), file=stack)
    limit = int(job.get("memory_mb", 2048)) * 1024 * 1024
    resource.setrlimit(resource.RLIMIT_AS, (_address_space() + limit,) * 2)
    resource.setrlimit(resource.RLIMIT_FSIZE, (256 * 1024 * 1024,) * 2)
    scratch = job.get("scratch") or tempfile.mkdtemp(prefix="termlab-demo-")
    os.chdir(scratch)
    tempfile.tempdir = os.environ["TMPDIR"] = scratch  # temporary files go there too
    sys.path.insert(0, str(demos_dir))
    guard = WriteGuard((out, Path(scratch)))
    path = Path(job["path"])
    try:
        module = _load(path, job["name"])
        run = getattr(module, "run", None)
        if not callable(run):
            _fail(out, path, 1, "NoRunFunction",
                  f"{path.name} defines no run(demo) function; add `def run(demo): ...`", "")
            return
        demo = DemoContext(job["name"], out, job.get("options") or {}, str(path))
        run(demo)
        demo.save()
    except SyntaxError as exc:
        _fail(out, Path(exc.filename or path), exc.lineno or 1, "SyntaxError",
              f"syntax error: {exc.msg}", "".join(traceback.format_exception_only(exc)))
    except SystemExit as exc:
        where = _where(exc, demos_dir, path)
        _fail(out, *where, "SystemExit",
              f"demo called sys.exit({exc.code!r}); return from run() instead", _tb(exc, demos_dir))
    except MemoryError as exc:
        where = _where(exc, demos_dir, path)
        _fail(out, *where, "MemoryError",
              f"demo ran out of memory (limit {job.get('memory_mb', 2048)} MB); "
              "use smaller arrays or raise memory_limit_mb", _tb(exc, demos_dir))
    except BaseException as exc:  # noqa: BLE001 - any failure of the demo is reported
        where = _where(exc, demos_dir, path)
        message = guard.explain(exc) or str(exc) or type(exc).__name__
        _fail(out, *where, type(exc).__name__, message, _tb(exc, demos_dir))
    finally:
        faulthandler.cancel_dump_traceback_later()
        if writer.dropped:
            writer.stream.write(f"\n[termlab: {writer.dropped} more characters of output dropped]\n")
        writer.flush()


_WRITE_FLAGS = os.O_WRONLY | os.O_RDWR | os.O_CREAT | os.O_APPEND | os.O_TRUNC
_WRITE_EVENTS = {"os.remove", "os.rename", "os.mkdir", "os.rmdir", "shutil.rmtree", "os.truncate",
                 "os.symlink", "os.link", "os.chmod"}
_SYSTEM_FOLDERS = (Path("/dev"), Path("/proc"))


class OutsideWrite(PermissionError):
    """A demo tried to change a file outside its output folder."""


def outside_write(path: Any) -> str:
    return (f"demo tried to write {os.fsdecode(path)!r} outside its output folder; write "
            "relative paths (a scratch folder) or use demo.figure/demo.onnx")


class WriteGuard:
    """Refuses writes outside the allowed folders (plus /dev and /proc), for good.

    Demos are trusted code from the repository: this catches mistakes (a demo writing into
    the repo or the home folder), it is not a sandbox against hostile code. The kernel
    enforces it where it can (Landlock: free, and it covers C code and subprocesses too);
    elsewhere a Python audit hook does, which cannot be removed but runs on every audited
    call (each ``id()`` too: about a fifth of a figure's drawing time).
    """

    def __init__(self, allowed: tuple[Path, ...], kernel: bool = True):
        self.roots = tuple(str(p.resolve()) + os.sep for p in (*allowed, *_SYSTEM_FOLDERS))
        self.kernel = kernel and landlock.restrict_writes([*allowed, *_SYSTEM_FOLDERS])
        if not self.kernel:
            sys.addaudithook(self._hook)

    def inside(self, path: Any) -> bool:
        if isinstance(path, int):
            return True  # an already open descriptor
        try:
            full = os.path.realpath(os.fsdecode(path))
        except (TypeError, ValueError):
            return True
        return (full + os.sep).startswith(self.roots)

    def explain(self, exc: BaseException) -> str | None:
        """The refusal behind ``exc``, said plainly, if the kernel refused a write outside."""
        if not (self.kernel and isinstance(exc, PermissionError) and exc.filename is not None):
            return None
        path = exc.filename
        readable = os.access(path, os.R_OK) or not os.path.exists(path)  # so writing was refused
        return outside_write(path) if readable and not self.inside(path) else None

    def _hook(self, event: str, args: tuple) -> None:
        if event == "open":
            path, mode, flags = args
            writes = (isinstance(mode, str) and any(c in mode for c in "wax+")) or bool(
                isinstance(flags, int) and flags & _WRITE_FLAGS)
            if writes and path is not None and not self.inside(path):
                raise OutsideWrite(outside_write(path))
        elif event in _WRITE_EVENTS:
            for path in args[:2]:
                if isinstance(path, str | bytes | os.PathLike) and not self.inside(path):
                    raise OutsideWrite(f"demo tried to change {os.fsdecode(path)!r} outside its "
                                       "output folder")


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
    """The innermost frame inside ``demos/`` (the demo or a helper it imports)."""
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


def _fail(out: Path, path: Path, line: int, kind: str, message: str, trace: str) -> None:
    (out / ERROR_FILE).write_text(json.dumps(
        {"file": str(path), "line": line, "kind": kind, "message": message[:2000], "trace": trace}))
