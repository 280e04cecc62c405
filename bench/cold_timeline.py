"""Where a cold build's time goes: one `mkdocs build` of the gallery-parity demos (see
gallery_parity.py), with a timestamp on the plugin's events, the worker's readiness and each
demo as the build takes it in. Seconds from the start of this process; one run, no anchor.

    .venv/bin/python bench/cold_timeline.py
"""

from __future__ import annotations

import json
import logging
import os
import sys
import tempfile
import time
from pathlib import Path

T0 = time.monotonic()


def mark(what: str) -> None:
    cpu = time.process_time()
    print(f"{time.monotonic() - T0:6.3f} s  (build process CPU {cpu:5.2f} s)  {what}", flush=True)


def main() -> None:
    sys.path.insert(0, str(Path(__file__).parent))
    from gallery_parity import ENV, make_termlab

    os.environ.update(ENV)
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp) / "termlab"
        make_termlab(root)
        os.chdir(root)
        _instrument()
        from mkdocs.commands.build import build
        from mkdocs.config import load_config

        mark("start (imports done)")
        config = load_config("mkdocs.yml")
        config.plugins.on_startup(command="build", dirty=False)
        try:
            build(config)
        finally:
            config.plugins.on_shutdown()
        mark("build done")
        report = json.loads((root / ".termlab-cache" / "build-report.json").read_text())
        print(f"demo children: wall {sum(r['seconds'] for r in report.values()):.2f} s, "
              f"CPU {sum(r['cpu_seconds'] for r in report.values()):.2f} s (sums over "
              f"{len(report)} demos)")


def _instrument() -> None:
    from generator.adapters import mkdocs_plugin
    from generator.demo import pool

    for name in ("on_config", "on_files", "on_env", "on_post_build"):
        original = getattr(mkdocs_plugin.TermlabPlugin, name)
        if hasattr(original, "methods"):  # a CombinedEvent (MkDocs calls its parts in turn): mark the first
            original.methods = (_marked(name, original.methods[0]), *original.methods[1:])
            continue

        def wrapped(self, *args, _original=original, _name=name, **kwargs):
            mark(f"{_name} starts")
            return _original(self, *args, **kwargs)

        setattr(mkdocs_plugin.TermlabPlugin, name, wrapped)
    start = pool.WorkerPool._start

    def started(self):
        mark("worker spawned")
        start(self)
        threading_wait(self)

    pool.WorkerPool._start = started

    from generator.demo import engine

    wait = engine.DemoBatch.wait

    def waits(self, invocations):
        if invocations & self.pending and not getattr(self, "_marked", False):
            self._marked = True
            mark("pages that need no demo done: the build first waits for a demo")
        return wait(self, invocations)

    engine.DemoBatch.wait = waits

    class Demos(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            if "termlab: [" in record.getMessage() or "demos" in record.getMessage():
                mark(record.getMessage().removeprefix("termlab: "))

    logging.getLogger("termlab.demos").addHandler(Demos())
    logging.getLogger("termlab.demos").setLevel(logging.INFO)


def _marked(name: str, method):
    import functools

    @functools.wraps(method)  # keeps its event priority
    def wrapped(self, *args, **kwargs):
        mark(f"{name} starts")
        return method(self, *args, **kwargs)

    return wrapped


def threading_wait(pool_obj) -> None:
    """Mark the moment the worker says it is ready (its imports are done)."""
    import threading

    def wait():
        pool_obj._ready.wait()
        mark("worker ready")

    threading.Thread(target=wait, daemon=True).start()


if __name__ == "__main__":
    main()
