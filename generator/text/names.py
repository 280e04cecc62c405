"""Name normalisation and lookup: case-insensitive, by alias, and by simple English plurals."""

from __future__ import annotations

import difflib
import re
import unicodedata
from collections.abc import Iterable

_SEPARATORS = str.maketrans({c: " " for c in "-_\u2010\u2011\u2012\u2013\u2014\u2015"})


def slug(name: str) -> str:
    """An id-shaped form of a name: lowercase letters and digits joined by hyphens."""
    return re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-")


def normalize(name: str) -> str:
    """Compatibility-normalised (NFKC: a decomposed é equals the composed one) and case-folded,
    with runs of spaces, hyphens, dashes and underscores folded into one space."""
    if not name.isascii():
        name = unicodedata.normalize("NFKC", name)
    return " ".join(name.casefold().translate(_SEPARATORS).split())


def invisible(name: str) -> list[str]:
    """The invisible and direction-changing characters in a name (zero-width spaces and joiners,
    bidirectional overrides, soft hyphens...: Unicode format characters), as ``U+XXXX NAME``;
    with them two names that look identical can differ."""
    if name.isascii():
        return []
    return [f"U+{ord(c):04X} {unicodedata.name(c, 'format character')}"
            for c in dict.fromkeys(name) if unicodedata.category(c) == "Cf"]


def singulars(key: str) -> list[str]:
    """Candidate singular forms of a normalised name (``batches`` -> ``batch``...)."""
    out = []
    if key.endswith("ies") and len(key) > 4:
        out.append(key[:-3] + "y")
    if key.endswith("es") and len(key) > 3:
        out.append(key[:-2])
    if key.endswith("s") and not key.endswith("ss") and len(key) > 2:
        out.append(key[:-1])
    return out


def lookup(names: dict[str, str], name: str) -> str | None:
    """Resolve ``name`` against a normalised-name -> id map, trying plurals last."""
    key = normalize(name)
    if key in names:
        return names[key]
    for candidate in singulars(key):
        if candidate in names:
            return names[candidate]
    return None


def did_you_mean(word: str, choices: Iterable[str]) -> str:
    """`` (did you mean 'x'?)`` for the closest choice, or an empty string."""
    close = difflib.get_close_matches(word, list(choices), n=1, cutoff=0.6)
    return f" (did you mean '{close[0]}'?)" if close else ""
