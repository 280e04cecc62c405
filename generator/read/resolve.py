"""Resolve names into ids and build every index in single dictionary passes."""

from __future__ import annotations

import heapq
from dataclasses import replace

from ..model import Glossary, Problem, Term, field_label
from ..text.names import did_you_mean, lookup, normalize, slug
from ..text.numbers import typed_numbers
from ..text.safety import unsafe_markup, unsafe_urls
from ..text.scan import iter_wikilinks
from .load import Loaded

REF_FIELDS = ("related", "see_also", "prerequisites")
SCAFFOLD_TODO = "TODO"


def resolve(loaded: Loaded) -> Glossary:
    """Build the resolved glossary; every unresolvable name becomes a Problem."""
    problems = list(loaded.problems)
    terms = loaded.terms
    names: dict[str, str] = {}
    owner_line: dict[str, tuple[str, int]] = {}

    for stem in loaded.broken:
        names[normalize(stem)] = stem
    ordered = sorted(terms.values(), key=lambda t: t.id)
    # Ids and names claim first, aliases after: an alias that takes another term's name is
    # the one to blame, whichever file sorts first.
    passes = [[(t, t.id, ("term",)) for t in ordered] + [(t, t.term, ("term",)) for t in ordered],
              [(t, a, ("aliases", i)) for t in ordered for i, a in enumerate(t.aliases)]]
    for candidates in passes:
        for term, name, path in candidates:
            key = normalize(name)
            other = names.get(key)
            if other is None:
                names[key] = term.id
                owner_line[key] = (term.where, term.line(*path))
            elif other != term.id:
                first = owner_line.get(key, (other, 0))
                problems.append(Problem(
                    term.where, term.line(*path),
                    f"'{name}' is already a name of '{other}' ({first[0]}:{first[1]}); "
                    "names and aliases must be unique (case-insensitive): rename or remove one",
                    path[0]))
    problems.extend(_redirect_clashes(ordered, terms))

    def find(name: str) -> str | None:
        return lookup(names, name)

    all_names = sorted({t.term for t in terms.values()} | set(terms) |
                       {a for t in terms.values() for a in t.aliases})
    backlinks: dict[str, set[str]] = {tid: set() for tid in terms}
    members: dict[str, list[str]] = {cid: [] for cid in loaded.categories}

    resolved_refs: dict[str, dict[str, list[str]]] = {}  # the loaded terms stay as they were read
    for term in terms.values():
        where = term.where
        if term.category in members:
            members[term.category].append(term.id)
        elif term.category:
            problems.append(Problem(where, term.line("category"),
                                    f"unknown category '{term.category}'"
                                    f"{did_you_mean(term.category, members)}; declare it in "
                                    "glossary/_categories.yaml or use one of: "
                                    f"{', '.join(members) or '(none declared)'}", "category"))
        for i, ref in enumerate(term.references):
            if ref.title.startswith(SCAFFOLD_TODO) or any(a.startswith(SCAFFOLD_TODO) for a in ref.authors):
                problems.append(Problem(where, term.line("references", i), "still holds the TODO "
                                        "written by `termlab new`; cite a real primary source",
                                        "references"))
        for fieldname in REF_FIELDS:
            resolved: list[str] = []
            for i, name in enumerate(getattr(term, fieldname)):
                target = find(name)
                line = term.line(fieldname, i)
                if target is None:
                    problems.append(Problem(where, line, f"unknown term '{name}'"
                                            f"{did_you_mean(name, all_names)}", fieldname))
                elif target == term.id:
                    problems.append(Problem(where, line, f"'{name}' is this term itself; "
                                            "remove the self-reference", fieldname))
                elif target not in resolved:
                    resolved.append(target)
                    if target in backlinks:
                        backlinks[target].add(term.id)
            resolved_refs.setdefault(term.id, {})[fieldname] = resolved
        for path, text in term.text_fields():
            field = field_label(path)
            for name, _label, _offset in iter_wikilinks(text):
                target = find(name)
                if target is None:
                    problems.append(Problem(where, term.locate(path, f"[[{name}"),
                                            f"unknown term '[[{name}]]'"
                                            f"{did_you_mean(name, all_names)}", field))
                elif target != term.id and target in backlinks:
                    backlinks[target].add(term.id)
            if text.lstrip().startswith(SCAFFOLD_TODO):
                problems.append(Problem(where, term.line(*path), "still holds the TODO written by "
                                        "`termlab new`; replace it with the real text", field))
            if term.demo:
                for number, offset in typed_numbers(text):
                    problems.append(Problem(where, term.locate(path, text.splitlines()[offset].strip()[:80]),
                                            f"'{number}' is typed by hand in a paragraph about the demo; "
                                            "record it in the demo (demo.setting or demo.metric) and write "
                                            "{{its_name}} here", field))
            for message, offset in unsafe_markup(text):
                problems.append(Problem(where, term.locate(path, text.splitlines()[offset].strip()[:80]),
                                        message, field))
            for url, _offset in unsafe_urls(text):
                problems.append(Problem(where, term.locate(path, url),
                                        f"unsafe URL '{url[:60]}' refused; use an http(s) link",
                                        field))

    terms = {tid: replace(term, **resolved_refs.get(tid, {})) for tid, term in terms.items()}

    def by_name(ids) -> list[str]:
        return sorted(ids, key=lambda i: (terms[i].term.casefold(), i))

    for cid in members:
        members[cid] = by_name(members[cid])
    problems.extend(_cycles(terms))
    order, next_up = _learning_order(terms)
    return Glossary(
        terms=terms,
        categories=dict(sorted(loaded.categories.items(), key=lambda kv: (kv[1].order, kv[0]))),
        names=names,
        backlinks={tid: by_name(ids) for tid, ids in backlinks.items()},
        members=members,
        learning_order=order,
        next_up={tid: by_name(ids) for tid, ids in next_up.items()},
        problems=sorted(set(problems)),
        broken_files={stem: [p for p in problems if p.path == where]
                      for stem, where in loaded.broken.items()},
    )


def _redirect_clashes(ordered: list[Term], terms: dict[str, Term]) -> list[Problem]:
    """A former id (``redirect_from``) whose URL another term already has: its id, the slug of
    its name or of an alias (which redirect there too), or another term's former id."""
    slugs: dict[str, tuple[str, str]] = {}  # slug -> (term id, what it is)
    for term in ordered:
        for name, what in [(term.term, "name"), *((a, "alias") for a in term.aliases)]:
            slugs.setdefault(slug(name), (term.id, f"the {what} '{name}'"))
    problems = []
    claimed: dict[str, str] = {}
    for term in ordered:
        for i, old in enumerate(term.redirect_from):
            other = (old, "the id") if old in terms else slugs.get(old) or (
                (claimed[old], f"a former id ('{old}')") if old in claimed else None)
            if other and other[0] != term.id:
                owner, what = other
                problems.append(Problem(
                    term.where, term.line("redirect_from", i),
                    f"terms/{old}/ already belongs to '{owner}' ({what} of {terms[owner].where}); "
                    "a redirect there would be ambiguous: remove it here or rename the other",
                    "redirect_from"))
            claimed.setdefault(old, term.id)
    return problems


def _cycles(terms: dict[str, Term]) -> list[Problem]:
    """One problem per prerequisite cycle, found with an iterative depth-first search."""
    problems: list[Problem] = []
    state: dict[str, int] = {}  # 1 = on the stack, 2 = done
    for start in sorted(terms):
        if start in state:
            continue
        stack = [(start, iter(terms[start].prerequisites))]
        path = [start]
        state[start] = 1
        while stack:
            node, children = stack[-1]
            child = next((c for c in children if c in terms), None)
            if child is None:
                state[node] = 2
                stack.pop()
                path.pop()
            elif state.get(child) == 1:
                cycle = path[path.index(child):] + [child]
                term = terms[node]
                i = term.prerequisites.index(child)
                problems.append(Problem(term.where, term.line("prerequisites", i),
                                        f"prerequisites form a cycle: {' → '.join(cycle)}; "
                                        "remove one of these prerequisites", "prerequisites"))
            elif child not in state:
                state[child] = 1
                path.append(child)
                stack.append((child, iter(terms[child].prerequisites)))
    return problems


def _learning_order(terms: dict[str, Term]) -> tuple[list[str], dict[str, set[str]]]:
    """A topological order of prerequisites (ties by name) and, per term, what it unlocks."""
    next_up: dict[str, set[str]] = {tid: set() for tid in terms}
    indegree = dict.fromkeys(terms, 0)
    for term in terms.values():
        for pre in term.prerequisites:
            if pre in terms:
                next_up[pre].add(term.id)
                indegree[term.id] += 1
    heap = [(terms[t].term.casefold(), t) for t, d in indegree.items() if d == 0]
    heapq.heapify(heap)
    order: list[str] = []
    while heap:
        _, tid = heapq.heappop(heap)
        order.append(tid)
        for nxt in next_up[tid]:
            indegree[nxt] -= 1
            if indegree[nxt] == 0:
                heapq.heappush(heap, (terms[nxt].term.casefold(), nxt))
    return order, next_up
