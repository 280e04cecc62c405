"""`mkdocs serve` notices an edited entry at once.

MkDocs watches with a polling observer: every half second it stats every file under each
watched folder, so an edit waits 0.25 s on average before the rebuild starts, and a glossary of
10,000 entries is stat-ed twenty thousand times a second while nothing happens. termlab's
folders (entries, demos, the audit signal) are watched with the operating system's own
notifications instead (inotify, FSEvents, ReadDirectoryChangesW through watchdog's native
observer); MkDocs' own folders stay on its polling observer. Where native watching is not
available (no inotify, too many watches), a folder falls back to polling.

A native observer also reports files being opened and closed unwritten (watchdog ≥ 2.3 on
inotify), and MkDocs rebuilds on any event: every build reads the entries and demos, so each build
set off the next, and an edit waited for an empty rebuild (~0.5 s here at 1,000 entries, ~1 s for
this glossary). Only events that change something reach MkDocs."""

from __future__ import annotations

import logging

from watchdog.events import FileSystemEventHandler
from watchdog.observers import Observer

log = logging.getLogger("termlab.serve")

READS = frozenset({"opened", "closed_no_write"})  # watchdog's event types for a file only read


class ChangesOnly(FileSystemEventHandler):
    """Passes an event on unless it only says a file was read."""

    def __init__(self, handler) -> None:
        self.handler = handler

    def dispatch(self, event) -> None:
        if event.event_type not in READS:
            self.handler.dispatch(event)


class NativeWatches:
    """Stands in for the server's observer: folders scheduled from now on are watched natively;
    what MkDocs scheduled before stays with its polling observer. Starts, stops and joins both."""

    def __init__(self, polling) -> None:
        self.polling = polling
        self.native = Observer()
        self._mine: set = set()

    def schedule(self, handler, path, recursive: bool = False, **kwargs):
        try:
            watch = self.native.schedule(ChangesOnly(handler), path, recursive=recursive, **kwargs)
        except OSError as exc:  # e.g. inotify's watch limit: poll this folder like MkDocs does
            log.info("termlab: watching %s by polling (%s)", path, exc)
            return self.polling.schedule(handler, path, recursive=recursive, **kwargs)
        self._mine.add(watch)
        return watch

    def unschedule(self, watch) -> None:
        (self.native if watch in self._mine else self.polling).unschedule(watch)
        self._mine.discard(watch)

    def start(self) -> None:
        self.polling.start()
        self.native.start()

    def stop(self) -> None:
        self.native.stop()
        self.polling.stop()

    def join(self, timeout: float | None = None) -> None:
        self.native.join(timeout)
        self.polling.join(timeout)

    def __getattr__(self, name):  # anything else MkDocs asks of its observer
        return getattr(self.polling, name)


def watch_natively(server) -> None:
    """From now on, folders ``server.watch`` is given are watched natively."""
    if not isinstance(server.observer, NativeWatches):
        server.observer = NativeWatches(server.observer)
