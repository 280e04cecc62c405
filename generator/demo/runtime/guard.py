"""Keep a demo from changing files outside its output folder (a guard against mistakes)."""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Any

from . import landlock

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
