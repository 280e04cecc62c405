"""Load ``glossary/*.yaml`` into Terms and Categories; every problem carries file:line."""

from __future__ import annotations

import datetime
import hashlib
import json
import math
import os
import re
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

from ..model import Category, DemoSpec, Problem, Question, Reference, Term, rel_path
from ..text.names import did_you_mean, invisible, slug
from .entrychecks import Link, entry_checks
from .validators import schema_text
from .yamlnodes import Document, YamlProblem, load

CATEGORIES_FILE = "_categories.yaml"
PATH_FILE = "_path.yaml"  # optional: the learning path's stages
ID_PATTERN = re.compile(r"^[a-z0-9]+(-[a-z0-9]+)*$")


@cache
def schema(name: str = "term") -> dict[str, Any]:
    """A JSON Schema shipped in ``generator/read/schema``."""
    return json.loads(schema_text(name))


@cache
def _validator(name: str):
    """The full validator, for the slow path that names every problem (imported lazily)."""
    import jsonschema

    return jsonschema.Draft202012Validator(schema(name))


@cache
def _fast_check(name: str):
    """A compiled validator: the fast path for valid entries (about 30x faster). Generated
    ahead of time (``generator/read/validators``) unless the schema changed since."""
    from .validators import precompiled

    found = precompiled(name, schema_text(name))
    if found is not None:
        return found
    import fastjsonschema

    return fastjsonschema.compile(schema(name))


def _is_valid(data: Any, name: str) -> bool:
    import fastjsonschema

    try:
        _fast_check(name)(data)
    except fastjsonschema.JsonSchemaException:
        return False
    return True


@dataclass
class Loaded:
    """What the loader found: terms and categories by id, and every problem."""

    terms: dict[str, Term] = field(default_factory=dict)
    categories: dict[str, Category] = field(default_factory=dict)
    stages: dict[str, Category] = field(default_factory=dict)  # declared in _path.yaml: same shape
    stage_file: str = ""  # where the stages are declared (for messages)
    problems: list[Problem] = field(default_factory=list)
    broken: dict[str, str] = field(default_factory=dict)
    links: dict[str, list[Link]] = field(default_factory=dict)  # each term's [[links]], unresolved


def load_glossary(glossary_dir: Path, demos_dir: Path, root: Path | None = None,
                  memo: dict | None = None) -> Loaded:
    """Read every entry and the categories file; collect all problems, never stop early.
    ``memo`` (kept by the caller between loads, e.g. across serve rebuilds) holds each file's
    outcome by its stat: an unchanged file is not read again."""
    root = root or glossary_dir.parent
    out = Loaded()
    if not glossary_dir.is_dir():
        out.problems.append(Problem(rel_path(glossary_dir, root), 0,
                                    "glossary folder not found; create it or set glossary_dir"))
        return out
    out.categories = _load_categories(glossary_dir / CATEGORIES_FILE, root, out.problems)
    out.stage_file = rel_path(glossary_dir / PATH_FILE, root)
    if (glossary_dir / PATH_FILE).is_file():
        out.stages = _load_categories(glossary_dir / PATH_FILE, root, out.problems, "path")
    prefix = rel_path(glossary_dir, root)  # resolved once: Path.resolve() per file cost ~0.5 s at 10k
    demo_files, demos_seen = demo_names(demos_dir)
    seen: dict[str, str] = {}  # id -> the file that defines it
    visited: set[str] = set()
    folder = str(glossary_dir)
    for name in entry_files(glossary_dir):
        stem = name.rsplit(".", 1)[0]  # plain strings: pathlib per file cost ~1.5 s at 100k entries
        rel = f"{prefix}/{name}"
        if stem in seen:
            out.problems.append(Problem(rel, 1, f"the id '{stem}' is also defined by "
                                        f"{seen[stem]}; keep one of the two files"))
            continue
        seen[stem] = rel
        if not ID_PATTERN.match(stem):
            suggestion = slug(stem) or "my-term"
            out.problems.append(Problem(rel, 0, f"file name '{name}' is not a valid term id; "
                                        f"rename it to '{suggestion}.yaml' (lowercase, hyphens)"))
            continue
        visited.add(rel)
        term, problems, links = _entry(f"{folder}/{name}", rel, demos_dir, (demo_files, demos_seen), root, memo)
        out.problems.extend(problems)
        if term is None:
            out.broken[stem] = rel
        else:
            out.terms[term.id] = term
            if links:
                out.links[term.id] = links
    for gone in set(memo or ()) - visited:
        del memo[gone]
    return out


def demo_names(demos_dir: Path) -> tuple[set[str], str]:
    """The demo files' names (stems) and a digest of them."""
    names = {p.stem for p in demos_dir.glob("*.py")} if demos_dir.is_dir() else set()
    return names, hashlib.sha256("\n".join(sorted(names)).encode()).hexdigest()[:16]


def entry_files(glossary_dir: Path) -> list[str]:
    """The entry files' names in a glossary folder, sorted (``_categories.yaml`` and other
    files starting with ``_`` are not entries)."""
    return sorted(e.name for e in os.scandir(glossary_dir)
                  if e.name.endswith((".yaml", ".yml")) and not e.name.startswith("_"))


def read_entry(file: str, rel: str, demos_dir: Path, demos: tuple[set[str], str],
               root: Path) -> tuple[Term | None, list[Problem], list[Link]]:
    """One entry file, read now: its Term (None if unusable), its problems and its links."""
    return _entry(file, rel, demos_dir, demos, root, None)


def _entry(file: str, rel: str, demos_dir: Path, demos: tuple[set[str], str], root: Path,
           memo: dict | None) -> tuple[Term | None, list[Problem], list[Link]]:
    """One entry file: its Term (None if unusable), its problems and its ``[[links]]``; from
    ``memo`` when the file's stat and the set of demo files are those it was read with (Terms
    are immutable). ``demos``: the demo files' names and a digest of them."""
    key = None
    if memo is not None:
        try:
            st = os.stat(file)
            key = (st.st_mtime_ns, st.st_size, st.st_ino, demos[1])
        except OSError:
            key = None
        if key is not None and (kept := memo.get(rel)) is not None and kept[0] == key:
            return kept[1], kept[2], kept[3]
    path = Path(file)
    problems: list[Problem] = []
    links: list[Link] = []
    try:
        doc = load(path)
    except (YamlProblem, OSError) as exc:
        problems.append(Problem(rel, getattr(exc, "line", 0), getattr(exc, "message", str(exc))))
        term = None
    else:
        term = _make_term(path.stem, path, rel, doc, demos_dir, demos[0], root, problems)
        if term is not None:
            links, more = entry_checks(term)
            problems.extend(more)
    if key is not None:
        memo[rel] = (key, term, problems, links)
    return term, problems, links


def _schema_problems(data: Any, doc: Document, rel: str, name: str) -> tuple[list[Problem], set]:
    """Problems from the JSON Schema, each at the line of the offending value."""
    problems: list[Problem] = []
    bad_fields: set = set()
    if _is_valid(data, name):
        return problems, bad_fields
    for error in _validator(name).iter_errors(data):  # the slow path names every problem
        path = tuple(error.absolute_path)
        line = _line(doc.lines, path)
        fieldname = ".".join(str(p) for p in path) if path else ""
        if path:
            bad_fields.add(path[0])
        if error.validator == "oneOf" and isinstance(error.instance, dict) and error.context:
            # `demo:` as a mapping: report what is wrong inside it, not "matches no branch".
            for sub in error.context:
                if sub.relative_schema_path[0] != 1 or sub.validator == "type" and not sub.path:
                    continue
                sub_path = tuple(sub.absolute_path)
                problems.append(Problem(rel, _line(doc.lines, sub_path), _explain(sub),
                                        ".".join(str(p) for p in sub_path)))
            continue
        if error.validator == "additionalProperties":
            allowed = list(error.schema.get("properties", {}))
            for key in error.instance:
                if key not in allowed:
                    bad_fields.add(key) if not path else None
                    problems.append(Problem(
                        rel, _line(doc.lines, path + (key,)),
                        f"unknown field '{key}'{did_you_mean(str(key), allowed)}; "
                        f"allowed fields: {', '.join(allowed)}", fieldname))
            continue
        problems.append(Problem(rel, line, _explain(error), fieldname))
    return problems, bad_fields


def _explain(error) -> str:
    """A short, actionable sentence for a schema error."""
    v, inst = error.validator, error.instance
    if v == "required":
        missing = error.message.split("'")[1] if "'" in error.message else error.message
        return f"missing required field '{missing}'; add `{missing}: ...`"
    if v == "type":
        want = error.validator_value
        want = " or ".join(want) if isinstance(want, list) else want
        return f"expected {_article(want)} {want}, got {_kind(inst)}"
    if v == "pattern" and isinstance(inst, str) and error.validator_value == r"\S":
        return "must not be blank"
    if v == "pattern" and error.validator_value == "^https?://":
        return f"URL {inst!r} must start with http:// or https://"
    if v == "pattern":
        return f"{inst!r} is not a valid name here (expected lowercase words joined by hyphens)"
    if v == "minLength":
        return "must not be empty"
    if v == "maxLength":
        return f"is too long ({len(inst)} characters; the limit is {error.validator_value})"
    if v == "uniqueItems":
        return "lists the same value twice; remove the repeat"
    if v == "oneOf":
        return "demo must be a demo name (demos/<name>.py) or a mapping with `name:` and options"
    if v in ("minimum", "maximum", "exclusiveMinimum"):
        return f"{inst!r} is out of range ({error.message})"
    return error.message[:300]


def _article(word: str) -> str:
    return "an" if word[:1] in "aeiou" else "a"


def _kind(value: Any) -> str:
    return {dict: "a mapping", list: "a list", str: "text", bool: "true/false", int: "a number",
            float: "a number", type(None): "nothing (null)", datetime.date: "a date",
            datetime.datetime: "a date and time", bytes: "binary data"}.get(type(value), type(value).__name__)


def _line(lines: dict[tuple, int], path: tuple) -> int:
    while path not in lines and path:
        path = path[:-1]
    return lines.get(path, 1)


def _make_term(term_id: str, path: Path, rel: str, doc: Document, demos_dir: Path,
               demo_files: set[str], root: Path, problems: list[Problem]) -> Term | None:
    data = doc.data
    if not isinstance(data, dict):
        problems.append(Problem(rel, 1, f"an entry must be a mapping of fields, got {_kind(data)}; "
                                "start with `term: ...`"))
        return None
    found, bad = _schema_problems(data, doc, rel, "term")
    problems.extend(found)
    ok = {k: v for k, v in data.items() if k not in bad}

    def texts(key: str) -> list[str]:
        return [str(x) for x in ok.get(key, [])]

    term = Term(
        id=term_id,
        term=str(ok.get("term", term_id)),
        summary=str(ok.get("summary", "")),
        body=str(ok.get("body", "")),
        category=str(ok.get("category", "")),
        source=path,
        where=rel,
        aliases=texts("aliases"),
        tags=texts("tags"),
        related=texts("related"),
        see_also=texts("see_also"),
        prerequisites=texts("prerequisites"),
        stage=str(ok.get("stage", "")),
        redirect_from=texts("redirect_from"),
        key_concepts=texts("key_concepts"),
        example=str(ok.get("example", "")),
        analogy=str(ok.get("analogy", "")),
        levels={k: str(v) for k, v in ok.get("levels", {}).items()},
        questions=[Question(str(q["q"]), str(q["a"])) for q in ok.get("questions", [])],
        references=[
            Reference(title=r["title"], authors=tuple(r["authors"]), year=r["year"],
                      url=r.get("url"), venue=r.get("venue"))
            for r in ok.get("references", [])
        ],
        lines=doc.lines,
        text=doc.text,
    )
    for i, name in [(None, term.term), *enumerate(term.aliases)]:
        hidden = invisible(name)
        if hidden:
            path = ("term",) if i is None else ("aliases", i)
            problems.append(Problem(rel, _line(doc.lines, path), f"{name!r} contains invisible or "
                                    f"direction-changing characters ({', '.join(hidden)}): two names "
                                    "that look the same could differ; type the name plainly", path[0]))
    if "demo" in ok:
        term.demo = _demo_spec(ok["demo"], demos_dir, demo_files, root, rel, doc, problems)
    return term


def _demo_spec(value: Any, demos_dir: Path, demo_files: set[str], root: Path, rel: str,
               doc: Document, problems: list[Problem]) -> DemoSpec | None:
    options = dict(value) if isinstance(value, dict) else {"name": value}
    name = str(options.pop("name"))
    timeout = options.pop("timeout", None)
    path = demos_dir / f"{name}.py"
    if timeout is not None and not math.isfinite(timeout):
        problems.append(Problem(rel, _line(doc.lines, ("demo", "timeout")), f"timeout {timeout!r} "
                                "must be a number of seconds, more than 0 and at most 3600", "demo"))
        return None
    bad = _not_json(options, ("demo",))
    if bad:
        where, why = bad
        problems.append(Problem(rel, _line(doc.lines, where), f"option {'.'.join(map(str, where[1:]))} "
                                f"{why}; demo options must be JSON values (text, numbers, true/false, "
                                "lists, mappings with text keys)", "demo"))
        return None
    if name not in demo_files:
        known = sorted(demo_files)
        problems.append(Problem(rel, _line(doc.lines, ("demo",)),
                                f"no demo file {rel_path(path, root)}{did_you_mean(name, known)}; "
                                "create it (termlab new) or fix the name", "demo"))
        return None
    return DemoSpec(name=name, path=path, options=options, timeout=timeout)


def _not_json(value: Any, path: tuple) -> tuple[tuple, str] | None:
    """Where and why ``value`` is not plain JSON data (YAML also has dates, binary, any key)."""
    if isinstance(value, dict):
        for key, item in value.items():
            if not isinstance(key, str):
                return path, f"has the key {key!r} ({_kind(key)}); write keys as text"
            found = _not_json(item, (*path, key))
            if found:
                return found
    elif isinstance(value, list):
        for i, item in enumerate(value):
            found = _not_json(item, (*path, i))
            if found:
                return found
    elif isinstance(value, float) and not math.isfinite(value):
        return path, f"is {value!r}, which JSON cannot hold"
    elif not isinstance(value, str | int | float | bool | type(None)):
        hint = "; quote it to make it text" if isinstance(value, datetime.date) else ""
        return path, f"is {_kind(value)}{hint}"
    return None


def load_categories(glossary_dir: Path, root: Path) -> tuple[dict[str, Category], list[Problem]]:
    """Only the categories file (``termlab new`` picks its default category from it)."""
    problems: list[Problem] = []
    return _load_categories(glossary_dir / CATEGORIES_FILE, root, problems), problems


def _load_categories(path: Path, root: Path, problems: list[Problem],
                     kind: str = "categories") -> dict[str, Category]:
    """``_categories.yaml`` (or ``_path.yaml``'s stages, which have the same shape)."""
    rel = rel_path(path, root)
    if not path.is_file():
        problems.append(Problem(rel, 0, "categories file not found; create it with "
                                "`my-category: {name: ..., order: 1, description: ...}`"))
        return {}
    try:
        doc = load(path)
    except (YamlProblem, OSError) as exc:
        problems.append(Problem(rel, getattr(exc, "line", 0), getattr(exc, "message", str(exc))))
        return {}
    found, _ = _schema_problems(doc.data, doc, rel, kind)
    problems.extend(found)
    if not isinstance(doc.data, dict):
        return {}
    # A category with a bad field is still a category: entries that use it must not cascade
    # into "unknown category" errors (the bad field is reported once, above).
    categories = {}
    for cid, c in doc.data.items():
        if not isinstance(cid, str) or not ID_PATTERN.match(cid):
            continue
        c = c if isinstance(c, dict) else {}
        name, description, order = c.get("name"), c.get("description"), c.get("order")
        categories[cid] = Category(
            id=cid, name=name if isinstance(name, str) and name else cid,
            description=description if isinstance(description, str) else "",
            order=order if isinstance(order, int) and not isinstance(order, bool) else 0)
    return categories
