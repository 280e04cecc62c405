"""Nothing a demo starts outlives it.

A process that calls ``prctl(PR_SET_CHILD_SUBREAPER)`` inherits the orphans among its
descendants, even those that started a session of their own (``setsid``), which a process-group
kill misses. The worker and every demo child are subreapers: a demo child ends whatever it
started before it exits, and the worker ends what is left of a demo it had to kill.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import signal

PR_SET_CHILD_SUBREAPER = 36


def become_subreaper() -> bool:
    """Adopt orphaned descendants (Linux); False where the kernel does not offer it."""
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        return libc.prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) == 0
    except (OSError, AttributeError):
        return False


def children(parent: int) -> list[int]:
    """The processes whose parent is ``parent``: from its threads' ``children`` files where
    the kernel has them (one read each), else by reading every process's ``stat``."""
    try:
        found: list[int] = []
        for task in os.listdir(f"/proc/{parent}/task"):
            with open(f"/proc/{parent}/task/{task}/children", "rb") as f:
                found += map(int, f.read().split())
        return found
    except (OSError, ValueError):
        pass  # no CONFIG_PROC_CHILDREN (or the process is gone): scan
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat", "rb") as f:
                fields = f.read().rsplit(b")", 1)[1].split()
        except (OSError, IndexError):
            continue  # gone meanwhile
        if int(fields[1]) == parent:
            found.append(int(entry))
    return found


def end_children(keep: set[int] = frozenset(), rounds: int = 20) -> int:
    """Kill and reap this process's children except ``keep``, and the grandchildren they leave
    to it, until none is left. Returns how many were ended."""
    ended = 0
    for _ in range(rounds):
        strays = [pid for pid in children(os.getpid()) if pid not in keep]
        if not strays:
            break
        for pid in strays:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.kill(pid, signal.SIGKILL)
        for pid in strays:
            with contextlib.suppress(ChildProcessError):
                os.waitpid(pid, 0)
            ended += 1
    return ended
