"""Problems found in the inputs: every one names a file and a line and says how to fix it."""

from __future__ import annotations

import difflib
from collections.abc import Iterable
from dataclasses import dataclass


@dataclass(frozen=True, order=True)
class Problem:
    """One mistake in an input file, reported as ``path:line: field: message``."""

    path: str
    line: int
    message: str
    field: str = ""

    def __str__(self) -> str:
        where = f"{self.path}:{self.line}" if self.line else self.path
        return f"{where}: {self.field}: {self.message}" if self.field else f"{where}: {self.message}"


def format_problems(problems: Iterable[Problem]) -> str:
    """All problems, one a line, followed by a count."""
    items = sorted(problems)
    lines = [str(p) for p in items]
    lines.append(f"{len(items)} problem{'s' if len(items) != 1 else ''} found")
    return "\n".join(lines)


def did_you_mean(word: str, choices: Iterable[str]) -> str:
    """`` (did you mean 'x'?)`` for the closest choice, or an empty string."""
    close = difflib.get_close_matches(word, list(choices), n=1, cutoff=0.6)
    return f" (did you mean '{close[0]}'?)" if close else ""
