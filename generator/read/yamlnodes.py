"""Safe YAML reading that keeps line numbers and never expands aliases.

Text is composed into nodes with PyYAML's (C, when available) safe composer, then walked
into plain data while each value's line is recorded under its path, e.g. ``("related", 2)``.
A node met twice is an alias: it is rejected before anything is expanded, so alias bombs
cost nothing.
"""

from __future__ import annotations

import stat
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from yaml.constructor import SafeConstructor

Loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)

_STR_TAG = "tag:yaml.org,2002:str"
MAX_BYTES = 1_000_000
MAX_DEPTH = 32
_TOO_DEEP = f"YAML is nested too deeply (limit {MAX_DEPTH} levels)"


class YamlProblem(Exception):
    """A file that cannot be read as an entry; carries the 1-based line."""

    def __init__(self, line: int, message: str):
        super().__init__(message)
        self.line = line
        self.message = message


@dataclass
class Document:
    """A YAML file read into plain data, with the line of every value."""

    data: Any
    lines: dict[tuple, int]
    text: str


def read_text(path: Path) -> str:
    """The file's text, refusing anything but a regular file (a folder, a named pipe, a device,
    a dangling link), huge files, byte-order marks and non-UTF-8 bytes."""
    try:
        mode = path.stat().st_mode  # follows a symbolic link to what it points at
    except FileNotFoundError:
        raise YamlProblem(1, "is a symbolic link to a file that does not exist; remove the link "
                          "or point it at an entry") from None
    except OSError as exc:
        raise YamlProblem(1, f"cannot be read ({exc.strerror}); check its permissions") from None
    if not stat.S_ISREG(mode):
        what = ("a folder" if stat.S_ISDIR(mode) else "a named pipe" if stat.S_ISFIFO(mode) else
                "a device" if stat.S_ISCHR(mode) or stat.S_ISBLK(mode) else "a socket")
        raise YamlProblem(1, f"is {what}, not a regular file; remove or rename it (entries are "
                          "YAML files)")
    limit = f"entries are limited to {MAX_BYTES // 1000} kB (move long material into a linked page)"
    size = path.stat().st_size
    if size > MAX_BYTES:
        raise YamlProblem(1, f"file is {size / 1e6:.1f} MB; {limit}")
    try:
        with open(path, "rb") as f:
            raw = f.read(MAX_BYTES + 1)  # a file that grows while it is read stops here too
    except OSError as exc:
        raise YamlProblem(1, f"cannot be read ({exc.strerror}); check its permissions") from None
    if len(raw) > MAX_BYTES:
        raise YamlProblem(1, f"file is larger than its size said (it grew while being read); {limit}")
    if raw.startswith(b"\xef\xbb\xbf"):
        raise YamlProblem(1, "file starts with a UTF-8 byte-order mark; save it as UTF-8 without BOM")
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = raw[: exc.start].count(b"\n") + 1
        raise YamlProblem(
            line, f"byte 0x{raw[exc.start]:02x} is not valid UTF-8; save the file as UTF-8") from None


def parse(text: str) -> Document:
    """Compose and walk YAML text; raises YamlProblem with a line for anything malformed."""
    try:
        node = yaml.compose(text, Loader=_loader_for(text))
    except yaml.MarkedYAMLError as exc:
        if "nesting depth" in (exc.problem or ""):  # libyaml >= 0.2.6 (PyYAML 6.0.4) has its own limit
            raise YamlProblem(_too_deep_line(text), _TOO_DEEP) from None
        mark = exc.problem_mark or exc.context_mark
        # An unclosed bracket or quote fails where the parser gives up (often the end of the
        # file); the author has to fix the line where it was opened.
        if exc.context_mark and exc.context and any(
                w in exc.context for w in ("quoted scalar", "flow sequence", "flow mapping", "flow node")):
            mark = exc.context_mark
        line = mark.line + 1 if mark else 1
        raise YamlProblem(line, _yaml_message(exc, text, line)) from None
    except yaml.YAMLError as exc:
        raise YamlProblem(1, f"malformed YAML: {exc}") from None
    except RecursionError:
        raise YamlProblem(1, _TOO_DEEP) from None
    if node is None:
        raise YamlProblem(1, "file is empty; an entry needs at least term, summary, body and category")
    lines: dict[tuple, int] = {}
    data = _Walker(lines).walk(node, (), 0)
    return Document(data, lines, text)


def _too_deep_line(text: str) -> int:
    """The line of the first collection nested deeper than MAX_DEPTH (as the walker counts).

    Reads parser events only, which nest no recursion, up to that collection."""
    depth = 0
    try:
        for event in yaml.parse(text, Loader=Loader):
            if isinstance(event, yaml.CollectionStartEvent):
                depth += 1
                if depth > MAX_DEPTH + 1:
                    return event.start_mark.line + 1
            elif isinstance(event, yaml.CollectionEndEvent):
                depth -= 1
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        return mark.line + 1 if mark else 1
    return 1


def _loader_for(text: str) -> type:
    """The C loader, unless the text could nest deep enough to overflow its C stack.

    libyaml's composer recurses in C and crashed past ~10,000 levels; the depth is bounded
    by the bracket count plus the longest line, so only such texts take the Python loader,
    which raises RecursionError instead.
    """
    bound = text.count("[") + text.count("{") + max(map(len, text.splitlines()), default=0)
    return Loader if bound < 5000 else yaml.SafeLoader


def load(path: Path) -> Document:
    """Read and parse one YAML file."""
    return parse(read_text(path))


def _yaml_message(exc: yaml.MarkedYAMLError, text: str, line: int) -> str:
    lines = text.splitlines()
    here = lines[line - 1] if 0 < line <= len(lines) else ""
    if "\t" in here[: len(here) - len(here.lstrip())] or "'\\t'" in str(exc.problem):
        return "tab character in indentation; YAML indents with spaces only"
    problem = (exc.problem or "malformed YAML").strip()
    context = f" ({exc.context.strip()})" if exc.context else ""
    if exc.context and "quoted scalar" in exc.context:
        return f"malformed YAML: a quote opened on this line is never closed{context}; close it"
    if exc.context and "flow" in exc.context:
        return (f"malformed YAML: a bracket opened on this line is never closed properly: "
                f"{problem}{context}; check the commas and closing brackets")
    return f"malformed YAML: {problem}{context}; check the indentation and quoting on this line"


class _Walker:
    """Turns a node tree into plain data, recording lines and rejecting aliases.

    Only collections are tracked for aliases: an alias of a collection is what an alias bomb
    multiplies (an aliased scalar is harmless). Scalars are read inline: this walk is the
    hot loop of `termlab check`."""

    def __init__(self, lines: dict[tuple, int]):
        self.lines = lines
        self.seen: set[int] = set()
        self.constructor = SafeConstructor()

    def scalar(self, node: yaml.ScalarNode) -> Any:
        if node.tag == _STR_TAG:
            return node.value
        try:
            return self.constructor.construct_object(node)
        except yaml.YAMLError as exc:
            raise YamlProblem(node.start_mark.line + 1, f"cannot read value: {exc}") from None

    def value(self, node: yaml.Node, path: tuple, depth: int) -> Any:
        if type(node) is yaml.ScalarNode:
            return self.scalar(node)
        return self.walk(node, path, depth)

    def walk(self, node: yaml.Node, path: tuple, depth: int) -> Any:
        line = node.start_mark.line + 1
        lines = self.lines
        if type(node) is yaml.ScalarNode:
            lines.setdefault(path, line)
            return self.scalar(node)
        if id(node) in self.seen:  # an alias: its marks point at the anchor, so use the parent's line
            at = path[:-1] if path and isinstance(path[-1], int) else path
            while at and at not in lines:
                at = at[:-1]
            raise YamlProblem(lines.get(at, line),
                              "YAML aliases (*name) are not allowed in entries; write the value out")
        self.seen.add(id(node))
        if depth > MAX_DEPTH:
            raise YamlProblem(line, _TOO_DEEP)
        lines.setdefault(path, line)
        if type(node) is yaml.MappingNode:
            result: dict[Any, Any] = {}
            for key_node, value_node in node.value:
                key_line = key_node.start_mark.line + 1
                if type(key_node) is not yaml.ScalarNode:
                    raise YamlProblem(key_line, "a mapping key must be a plain name")
                key = self.scalar(key_node)
                if not isinstance(key, str | int | float | bool):
                    key = str(key)
                if key in result:
                    raise YamlProblem(key_line, f"duplicate key '{key}'")
                lines[path + (key,)] = key_line
                result[key] = self.value(value_node, path + (key,), depth + 1)
            return result
        items = []
        for i, item in enumerate(node.value):
            lines[path + (i,)] = item.start_mark.line + 1
            items.append(self.value(item, path + (i,), depth + 1))
        return items
