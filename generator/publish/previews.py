"""Hover-preview data in small shards: ``previews/<shard>.json`` maps id -> name, category,
summary. A preview fetches one shard (about 25 kB at 10,000 terms), not all of terms.json."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from ..model import Glossary

SHARDS = 64


def shard_of(term_id: str) -> int:
    """FNV-1a (32-bit) of the id, modulo SHARDS; termlab.js computes the same (ids are ASCII)."""
    h = 0x811C9DC5
    for byte in term_id.encode("ascii"):
        h = ((h ^ byte) * 0x01000193) & 0xFFFFFFFF
    return h % SHARDS


def preview_files(glossary: Glossary, index: Mapping[str, Any]) -> dict[str, bytes]:
    """One JSON file per non-empty shard, built from the terms.json entries."""
    shards: dict[int, dict[str, Any]] = {}
    for term in index["terms"]:
        shards.setdefault(shard_of(term["id"]), {})[term["id"]] = {
            "name": term["name"], "category": term["category"]["name"], "summary": term["summary"]}
    return {f"previews/{n:02x}.json": json.dumps(dict(sorted(items.items())), ensure_ascii=False,
                                                 separators=(",", ":")).encode()
            for n, items in sorted(shards.items())}
