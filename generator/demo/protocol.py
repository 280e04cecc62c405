"""What crosses the process boundary between a build and the demo worker, and every default
of a demo run (each is written here once).

The build sends one ``Job`` a JSON line on the worker's stdin; the worker answers one
``Reply`` a JSON line on its stdout as each demo ends. The worker and its children import
this module, so it is part of what a demo's cache key covers (``cache.runtime_fingerprint``).
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field, replace
from typing import Any

TIMEOUT_S = 120.0  # a demo's wall-clock limit unless its entry or the site says otherwise
MEMORY_MB = 2048  # address space a demo may add to what the warm worker already has
OUTPUT_CHARS = 20_000  # what a demo prints that is kept (the rest is counted, not kept)
FILE_LIMIT_BYTES = 256 * 1024 * 1024  # the largest file a demo may write


@dataclass(frozen=True)
class Job:
    """One demo run: which file, its options and limits, and where its outputs go."""

    id: str  # the cache key: the reply names it
    name: str
    path: str
    demos_dir: str
    out: str
    options: dict[str, Any] = field(default_factory=dict)
    timeout: float = TIMEOUT_S
    memory_mb: int = MEMORY_MB
    output_chars: int = OUTPUT_CHARS
    scratch: str = ""  # the child's working folder, chosen by the worker
    audit: bool = False  # a seed audit's run: figures are not drawn

    def with_scratch(self, scratch: str) -> Job:
        return replace(self, scratch=scratch)

    def to_line(self) -> bytes:
        return (json.dumps(asdict(self)) + "\n").encode()

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Job:
        return cls(**data)


@dataclass
class RunError:
    """Why a run failed, and where: the innermost line in the demo's own files, if known."""

    message: str
    file: str = ""
    line: int = 0
    trace: str = ""

    @classmethod
    def from_json(cls, data: dict[str, Any] | None) -> RunError | None:
        return cls(**data) if data else None


@dataclass
class Reply:
    """How one run ended; its outputs are files in the job's ``out`` folder."""

    id: str
    seconds: float = 0.0
    cpu_seconds: float = 0.0
    output: str = ""  # what the demo printed (truncated)
    error: RunError | None = None
    lost: bool = False  # the worker process died: the run says nothing about the demo

    def to_line(self) -> str:
        return json.dumps(asdict(self)) + "\n"

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Reply:
        return cls(**{**data, "error": RunError.from_json(data.get("error"))})


def died(job_id: str) -> Reply:
    """The reply for a job whose worker process went away."""
    return Reply(job_id, error=RunError("the worker process died while running the demo"), lost=True)
