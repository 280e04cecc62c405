"""Content-addressed demo cache: keys cover everything a run depends on; writes are atomic."""

from __future__ import annotations

import ast
import contextlib
import hashlib
import json
import os
import platform
import shutil
import sys
import tempfile
import uuid
from collections.abc import Iterable, Iterator
from functools import cache, lru_cache
from importlib import metadata
from pathlib import Path
from typing import Any

import generator

from .runtime import onnx as onnx_tools
from .runtime import plots

LAYOUT = "v1"
RUNTIME_PACKAGES = ("numpy", "onnx", "onnxruntime", "matplotlib")
# Also in the key: Pillow writes the figures' PNGs (and the rasters an SVG embeds).
KEYED_PACKAGES = (*RUNTIME_PACKAGES, "pillow")


@cache
def environment_fingerprint() -> str:
    """Everything outside the demo's own files that can change its output: the code that runs
    in the worker (``demo/runtime/`` and the protocol; not the build-side engine, whose edits
    change no result), render settings, and the versions of Python and the libraries."""
    here = Path(__file__).parent
    runtime = hashlib.sha256()
    for path in [here / "protocol.py", *sorted((here / "runtime").glob("*.py"))]:
        runtime.update(path.name.encode() + b"\0" + path.read_bytes())
    versions = {}
    for name in KEYED_PACKAGES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = "missing"
    return json.dumps({
        "termlab": generator.__version__,
        "runtime": runtime.hexdigest(),
        "python": sys.version.split()[0],
        "packages": versions,
        "platform": [platform.system(), platform.machine(), platform.libc_ver()[1]],
        "render": {"style": plots.STYLE_VERSION, "ir": onnx_tools.IR_VERSION,
                   "opset": onnx_tools.OPSET},
    }, sort_keys=True)


def local_imports(path: Path, demos_dir: Path, memo: dict | None = None) -> set[Path]:
    """Every file under ``demos_dir`` that ``path`` imports, transitively. ``memo`` (one dict
    per build) remembers where each import leads: the demos of a site share their helper
    modules, which were looked up again for every demo (~0.4 s of every rebuild here)."""
    memo = {} if memo is None else memo
    seen: set[Path] = set()
    todo = [path.resolve()]
    root = demos_dir.resolve()
    while todo:
        current = todo.pop()
        if current in seen:
            continue
        seen.add(current)
        imports = memo.get(current)
        if imports is None:
            try:
                imports = memo[current] = _imports(current.read_bytes())
            except OSError:
                continue  # the run will report it
        for level, dotted in imports:
            base = current.parent if level else root
            for _ in range(max(level - 1, 0)):
                base = base.parent
            found = memo.get((base, dotted))
            if found is None:
                found = memo[base, dotted] = _module_files(base, dotted)
            todo.extend(found)
    seen.discard(path.resolve())
    return seen


@lru_cache(maxsize=4096)
def _imports(source: bytes) -> tuple[tuple[int, tuple[str, ...]], ...]:
    """``(level, dotted names)`` of each import statement in ``source``. Memoised by content:
    demos share helper modules, which were parsed again for every demo (270 ms of a warm
    build of this repository's site)."""
    try:
        tree = ast.parse(source)
    except (SyntaxError, ValueError):
        return ()
    found = []
    for node in _statements(tree.body):
        if isinstance(node, ast.Import):
            found.append((0, tuple(alias.name for alias in node.names)))
        elif isinstance(node, ast.ImportFrom):
            prefix = node.module or ""
            names = [prefix] if prefix else []
            names += [f"{prefix}.{a.name}".strip(".") for a in node.names]
            found.append((node.level, tuple(names)))
    return tuple(found)


def _statements(body: list[ast.AST]) -> Iterator[ast.AST]:
    """Every statement, nested ones too (imports are statements: no need to visit the
    expressions, which are most of a tree)."""
    for node in body:
        yield node
        for name in ("body", "orelse", "finalbody", "handlers", "cases"):
            inner = getattr(node, name, None)
            if isinstance(inner, list):
                yield from _statements(inner)


def external_imports(paths: set[Path], demos_dir: Path) -> set[str]:
    """Modules (dotted, absolute) that these files import from outside ``demos_dir``: what a
    warm worker should import before it forks."""
    found: set[str] = set()
    local = {p.stem for p in demos_dir.iterdir()} if demos_dir.is_dir() else set()
    for path in paths:
        try:
            tree = ast.parse(path.read_bytes())
        except (SyntaxError, ValueError, OSError):
            continue
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and not node.level and node.module:
                names = [node.module]
            else:
                continue
            found.update(n for n in names if n.split(".")[0] not in local)
    return found


def _module_files(base: Path, dotted: Iterable[str]) -> list[Path]:
    """The files under ``base`` that importing each dotted name runs."""
    try:
        here = set(os.listdir(base))
    except OSError:
        return []
    files = []
    for name in dotted:
        parts = name.split(".")
        if parts[0] not in here and f"{parts[0]}.py" not in here:
            continue  # not a local module (numpy, matplotlib, ...): no need to look further
        for i in range(1, len(parts) + 1):  # a.b.c needs a/__init__, a/b/__init__, a/b/c
            stem = base.joinpath(*parts[:i])
            for candidate in (stem.with_suffix(".py"), stem / "__init__.py"):
                if candidate.is_file():
                    files.append(candidate.resolve())
    return files


def tree_state(folder: Path) -> tuple[tuple[str, int, int, int, int], ...]:
    """Each file under ``folder`` (bytecode caches aside) with its inode, size and times: the
    same state means no file a demo's key covers was written, added or removed since."""
    state = []
    for top, dirs, files in os.walk(folder):
        dirs[:] = sorted(d for d in dirs if d != "__pycache__")
        for name in sorted(files):
            with contextlib.suppress(OSError):
                st = os.stat(os.path.join(top, name))
                state.append((os.path.join(top, name), st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns))
    return tuple(state)


def demo_key(demo_path: Path, demos_dir: Path, name: str, options: dict[str, Any],
             timeout: float, memory_mb: int, memo: dict | None = None) -> str:
    """The cache key of one demo run (``memo``: see ``local_imports``)."""
    h = hashlib.sha256()
    h.update(json.dumps({"name": name, "options": options, "timeout": timeout,
                         "memory_mb": memory_mb, "env": environment_fingerprint()},
                        sort_keys=True, default=str).encode())
    root = demos_dir.resolve()
    for path in sorted({demo_path.resolve(), *local_imports(demo_path, demos_dir, memo)}):
        h.update(b"\0" + str(path.relative_to(root) if path.is_relative_to(root) else path).encode())
        h.update(b"\0" + path.read_bytes())
    return h.hexdigest()


class DemoCache:
    """The local backend of the cache (``remote.EntryStore`` names the interface; ``remote.SharedCache``
    puts this folder in front of a shared store): ``<dir>/v1/<key[:2]>/<key>/result.json`` plus
    files; a folder appears whole or not at all."""

    def __init__(self, directory: Path):
        self.directory = directory
        self.tmp = directory / "tmp"

    def entry(self, key: str) -> Path:
        return self.directory / LAYOUT / key[:2] / key

    def get(self, key: str) -> Path | None:
        entry = self.entry(key)
        return entry if (entry / "result.json").is_file() else None

    def prefetch(self, keys: Iterable[str]) -> None:
        """Bring these entries here from a shared store before they are read (none: nothing to do)."""

    def close(self) -> None:
        """The engine is done with the cache (a shared one may write a pack now)."""

    def scratch(self, key: str) -> Path:
        """A fresh private folder to run into."""
        path = self.tmp / f"{key[:16]}-{os.getpid()}-{uuid.uuid4().hex[:8]}"
        path.mkdir(parents=True)
        return path

    def commit(self, key: str, scratch: Path, result: dict[str, Any]) -> Path:
        """Write result.json into ``scratch`` and move it into place with one rename."""
        data = json.dumps(result, indent=1, sort_keys=True).encode()
        tmp_file = scratch / "result.json.tmp"
        tmp_file.write_bytes(data)
        os.replace(tmp_file, scratch / "result.json")
        return self.install(key, scratch)

    def install(self, key: str, scratch: Path) -> Path:
        """Move a complete entry folder into place with one rename."""
        entry = self.entry(key)
        entry.parent.mkdir(parents=True, exist_ok=True)
        try:
            os.rename(scratch, entry)
        except OSError:  # another build stored the same key first: theirs is as good
            shutil.rmtree(scratch, ignore_errors=True)
        return entry

    def discard(self, scratch: Path) -> None:
        shutil.rmtree(scratch, ignore_errors=True)

    def evict(self, key: str) -> None:
        """Remove an entry (to force a rerun); a rename first keeps readers safe."""
        entry = self.entry(key)
        if entry.exists():
            doomed = self.tmp / f"evict-{uuid.uuid4().hex}"
            self.tmp.mkdir(parents=True, exist_ok=True)
            os.rename(entry, doomed)
            shutil.rmtree(doomed, ignore_errors=True)

    def clean_tmp(self) -> None:
        """Remove scratch folders left by killed builds of this process's predecessors."""
        if not self.tmp.is_dir():
            return
        for path in self.tmp.iterdir():
            pid = path.name.split("-")[-2] if path.name.count("-") >= 2 else ""
            if not (pid.isdigit() and pid_alive(int(pid))):
                shutil.rmtree(path, ignore_errors=True)


def pid_alive(pid: int) -> bool:
    """True while a process with this id exists (scratch folders of live builds are kept)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def write_atomic(path: Path, text: str) -> None:
    """Write a file whole or not at all, from any number of processes at once: each writes its
    own uniquely named temporary file, then renames it into place."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


BUILD_REPORT = "build-report.json"  # the last build's timings, by demo invocation

def last_seconds(cache_dir: Path) -> dict[str, float]:
    """How long each demo ran, by invocation, as the last build reported it."""
    try:
        report = json.loads((cache_dir / BUILD_REPORT).read_text())
        return {inv: float(r["seconds"]) for inv, r in report.items()}
    except (OSError, ValueError, TypeError, KeyError, AttributeError):
        return {}


def write_build_report(cache_dir: Path, results: dict[str, Any]) -> None:
    """Timings live here, never on pages (they would break byte-identical builds)."""
    report = {inv: {"seconds": r.seconds, "cpu_seconds": r.cpu_seconds, "cached": r.cached,
                    "failed": bool(r.error)} for inv, r in sorted(results.items())}
    write_atomic(cache_dir / BUILD_REPORT, json.dumps(report, indent=1))

