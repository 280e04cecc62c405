"""The entry schemas' fastjsonschema validators, generated ahead of time.

Compiling a validator from ``generator/read/schema/*.schema.json`` costs ~30 ms, in every build
(code generation, then Python compiling ~50 KB of it); importing the generated module costs
~1 ms. Each module records the SHA-256 of the schema it was generated from: if the schema has
changed since, it is not used (the loader compiles the schema instead, and a test says to run
``python -m generator.read.validators``, which regenerates them all).
"""

from __future__ import annotations

import hashlib
import importlib
from collections.abc import Callable
from functools import cache
from importlib import resources
from typing import Any

SCHEMAS = ("term", "categories", "path")


@cache
def schema_text(name: str = "term") -> str:
    """The text of a JSON Schema shipped in ``generator/read/schema``."""
    return resources.files("generator.read.schema").joinpath(f"{name}.schema.json").read_text("utf-8")


def digest(schema_text: str) -> str:
    return hashlib.sha256(schema_text.encode("utf-8")).hexdigest()


def precompiled(name: str, schema_text: str) -> Callable[[Any], Any] | None:
    """The generated validator for schema ``name``, if it was generated from this text."""
    try:
        module = importlib.import_module(f"{__name__}.{name}")
    except ImportError:
        return None
    return module.validate if getattr(module, "SCHEMA_SHA256", "") == digest(schema_text) else None
