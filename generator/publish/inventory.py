"""A Sphinx inventory (objects.inv, version 2) with a ``std:term`` line per term and alias."""

from __future__ import annotations

import zlib

from ..model import Glossary
from ..render import urls


def inventory_lines(glossary: Glossary) -> list[str]:
    """``name std:term -1 uri dispname`` lines, sorted, one per term name and alias."""
    lines = []
    for term in glossary.terms.values():
        uri = urls.term_url(term.id)
        for name in dict.fromkeys([term.term, *term.aliases]):
            clean = " ".join(name.split())
            display = "-" if clean == term.term else term.term
            lines.append(f"{clean} std:term -1 {uri} {display}")
    return sorted(lines, key=str.casefold)


def inventory_bytes(glossary: Glossary, project: str, version: str = "") -> bytes:
    header = (
        "# Sphinx inventory version 2\n"
        f"# Project: {project}\n"
        f"# Version: {version}\n"
        "# The remainder of this file is compressed using zlib.\n"
    ).encode()
    body = "".join(line + "\n" for line in inventory_lines(glossary)).encode()
    return header + zlib.compress(body, 9)


def read_inventory(data: bytes) -> list[tuple[str, str, str, str]]:
    """``(name, domain:role, uri, dispname)`` from objects.inv bytes (v2)."""
    parts = data.split(b"\n", 4)
    if not parts[0].startswith(b"# Sphinx inventory version 2"):
        raise ValueError("not a Sphinx inventory version 2")
    out = []
    for line in zlib.decompress(parts[4]).decode().splitlines():
        name, rest = _split_name(line)
        if rest is None:
            continue
        role, _prio, uri, disp = rest
        if uri.endswith("$"):
            uri = uri[:-1] + name
        out.append((name, role, uri, name if disp == "-" else disp))
    return out


def _split_name(line: str):
    """Names may contain spaces: split at the first ``domain:role priority`` token."""
    tokens = line.split(" ")
    for i in range(1, len(tokens) - 2):
        if ":" in tokens[i] and tokens[i + 1].lstrip("-").isdigit():
            return " ".join(tokens[:i]), (tokens[i], tokens[i + 1], tokens[i + 2],
                                           " ".join(tokens[i + 3:]))
    return line, None
