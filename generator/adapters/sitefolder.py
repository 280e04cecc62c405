"""Publish a built site folder whole or not at all: build into a hidden sibling, swap it in
by renames once the build succeeded."""

from __future__ import annotations

import logging
import os
import shutil
from pathlib import Path

from ..demo.cache import pid_alive
from ..publish.tree import swap_in

log = logging.getLogger("termlab.site")


class _WarningCounter(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.count = 0

    def emit(self, record: logging.LogRecord) -> None:
        self.count += 1


class AtomicSite:
    """Build into a hidden sibling folder; swap it in only when the build succeeded, so a
    crashed, killed or strict-failed build never leaves a half-written site.

    ``watch``: the logger whose warnings fail a strict build (MkDocs' own, for the plugin)."""

    def __init__(self, final: Path, strict: bool, watch: str = "mkdocs"):
        self.final = final.resolve()
        parent = self.final.parent
        parent.mkdir(parents=True, exist_ok=True)
        for stale in parent.glob(f".{self.final.name}.termlab-*"):
            pid = stale.name.rsplit("-", 1)[-1]
            if pid.isdigit() and not pid_alive(int(pid)):
                shutil.rmtree(stale, ignore_errors=True)
        self.staging = parent / f".{self.final.name}.termlab-{os.getpid()}"
        self.watched = logging.getLogger(watch)
        self.counter = _WarningCounter() if strict else None
        if self.counter:
            self.watched.addHandler(self.counter)

    def finish(self) -> None:
        """Publish the staged site, unless strict mode is about to abort the build."""
        self._detach()
        if self.counter and self.counter.count:
            log.info("termlab: strict build failed: %s left as it was", self.final.name)
            self.abandon()
            return
        swap_in(self.staging, self.final)

    def abandon(self) -> None:
        self._detach()
        shutil.rmtree(self.staging, ignore_errors=True)

    def _detach(self) -> None:
        if self.counter:
            self.watched.removeHandler(self.counter)
