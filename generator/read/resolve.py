"""Resolve names into ids and build every index in single dictionary passes."""

from __future__ import annotations

import heapq
from dataclasses import replace
from functools import cache

from ..model import Category, Glossary, Problem, Stage, Term
from ..text.names import did_you_mean, lookup, normalize, slug
from .load import Loaded

REF_FIELDS = ("related", "see_also", "prerequisites")


def resolve(loaded: Loaded) -> Glossary:
    """Build the resolved glossary; every unresolvable name becomes a Problem."""
    return _resolve(loaded, assemble=True)


def check(loaded: Loaded, keep: dict | None = None) -> list[Problem]:
    """The problems ``resolve`` finds, without the indexes and orders only pages need
    (``keep``: see ``_resolve``)."""
    return _resolve(loaded, assemble=False, keep=keep)


def _resolve(loaded: Loaded, assemble: bool, keep: dict | None = None):
    """``keep``, if given, gets what a later check of a few changed entries needs: ``across``
    (the problems that involve more than one entry: names claimed twice, redirect clashes,
    prerequisite cycles, stages), ``names`` and the resolved ``prerequisites``."""
    problems = list(loaded.problems)
    across: list[Problem] = []
    start_across = len(problems)
    terms = loaded.terms
    names: dict[str, str] = {}
    owner: dict[str, tuple[Term, tuple]] = {}  # who claimed a name, and where (its line when needed)

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
                owner[key] = (term, path)
            elif other != term.id:
                first = (owner[key][0].where, owner[key][0].line(*owner[key][1])) if key in owner else (other, 0)
                problems.append(Problem(
                    term.where, term.line(*path),
                    f"'{name}' is already a name of '{other}' ({first[0]}:{first[1]}); "
                    "names and aliases must be unique (case-insensitive): rename or remove one",
                    path[0]))
    problems.extend(_redirect_clashes(ordered, terms))
    across.extend(problems[start_across:])

    found: dict[str, str | None] = {}  # names repeat across entries: each is looked up once

    def find(name: str) -> str | None:
        if name not in found:
            found[name] = lookup(names, name)
        return found[name]

    @cache
    def all_names() -> list[str]:  # for "did you mean", when a name is not found
        return sorted({t.term for t in terms.values()} | set(terms) |
                      {a for t in terms.values() for a in t.aliases})
    backlinks: dict[str, set[str]] = {tid: set() for tid in terms}
    members: dict[str, list[str]] = {cid: [] for cid in loaded.categories}

    resolved_refs: dict[str, dict[str, list[str]]] = {}  # the loaded terms stay as they were read
    for term in terms.values():
        if term.category in members:
            members[term.category].append(term.id)
        more, changed, targets = term_references(term, loaded.links.get(term.id, ()), find, members, all_names)
        problems.extend(more)
        if changed:
            resolved_refs[term.id] = changed
        for target in targets:
            if target in backlinks:
                backlinks[target].add(term.id)

    prerequisites = {tid: resolved_refs[tid]["prerequisites"] if "prerequisites" in resolved_refs.get(tid, ())
                     else t.prerequisites for tid, t in terms.items()}
    cycles = _cycles(terms, prerequisites)
    problems.extend(cycles)
    across.extend(cycles)
    if keep is not None:
        keep.update(across=across, names=names, prerequisites=prerequisites)
    if not assemble and not any(t.stage for t in terms.values()):
        return sorted(set(problems))  # stage problems need a stage: no order to compute
    terms = {tid: replace(term, **resolved_refs[tid]) if tid in resolved_refs else term
             for tid, term in terms.items()}
    order, next_up = _learning_order(terms)
    categories = dict(sorted(loaded.categories.items(), key=lambda kv: (kv[1].order, kv[0])))
    before = len(problems)
    kinds, placed = _placement(terms, order, categories, loaded, problems)
    across.extend(problems[before:])
    if not assemble:
        return sorted(set(problems))
    name_key = {tid: (t.term.casefold(), tid) for tid, t in terms.items()}

    def by_name(ids) -> list[str]:
        return sorted(ids, key=name_key.__getitem__)

    for cid in members:
        members[cid] = by_name(members[cid])
    stages = _learning_path(terms, order, categories, kinds, placed)
    return Glossary(
        terms=terms,
        categories=categories,
        names=names,
        backlinks={tid: by_name(ids) for tid, ids in backlinks.items()},
        members=members,
        learning_order=[tid for stage in stages for tid in stage.terms],
        stages=stages,
        next_up={tid: by_name(ids) for tid, ids in next_up.items()},
        problems=sorted(set(problems)),
        broken_files={stem: [p for p in problems if p.path == where]
                      for stem, where in loaded.broken.items()},
    )


def term_references(term: Term, links, find, categories, all_names) -> tuple[
        list[Problem], dict[str, list[str]], list[str]]:
    """One term's problems with its category, its reference fields and its ``[[links]]``; the
    reference fields whose names resolve to other ids (field -> ids); the ids it points to.
    ``find``: name -> id or None; ``all_names()``: every name, for "did you mean"."""
    where = term.where
    problems: list[Problem] = []
    targets: list[str] = []
    if term.category and term.category not in categories:
        problems.append(Problem(where, term.line("category"),
                                f"unknown category '{term.category}'"
                                f"{did_you_mean(term.category, categories)}; declare it in "
                                "glossary/_categories.yaml or use one of: "
                                f"{', '.join(categories) or '(none declared)'}", "category"))
    changed: dict[str, list[str]] = {}  # the reference fields whose names are not yet ids
    for fieldname in REF_FIELDS:
        written = getattr(term, fieldname)
        if not written:
            continue
        resolved: list[str] = []
        for i, name in enumerate(written):
            target = find(name)
            if target is None:
                problems.append(Problem(where, term.line(fieldname, i), f"unknown term '{name}'"
                                        f"{did_you_mean(name, all_names())}", fieldname))
            elif target == term.id:
                problems.append(Problem(where, term.line(fieldname, i), f"'{name}' is this term itself; "
                                        "remove the self-reference", fieldname))
            elif target not in resolved:
                resolved.append(target)
        targets += resolved
        if resolved != written:
            changed[fieldname] = resolved
    for link in links:
        target = find(link.name)
        if target is None:
            problems.append(Problem(where, link.line, f"unknown term '[[{link.name}]]'"
                                    f"{did_you_mean(link.name, all_names())}", link.field))
        elif target != term.id:
            targets.append(target)
    return problems, changed, targets


def _redirect_clashes(ordered: list[Term], terms: dict[str, Term]) -> list[Problem]:
    """A former id (``redirect_from``) whose URL another term already has: its id, the slug of
    its name or of an alias (which redirect there too), or another term's former id."""
    if not any(term.redirect_from for term in ordered):
        return []
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


def _cycles(terms: dict[str, Term], prerequisites: dict[str, list[str]]) -> list[Problem]:
    """One problem per prerequisite cycle (``prerequisites``: term id -> resolved ids)."""
    problems: list[Problem] = []
    for node, child, cycle in find_cycles(prerequisites):
        term = terms[node]
        problems.append(Problem(term.where, term.line("prerequisites", prerequisites[node].index(child)),
                                f"prerequisites form a cycle: {' → '.join(cycle)}; "
                                "remove one of these prerequisites", "prerequisites"))
    return problems


def find_cycles(prerequisites: dict[str, list[str]]) -> list[tuple[str, str, list[str]]]:
    """Each prerequisite cycle as (the term closing it, its prerequisite, the cycle), found
    with an iterative depth-first search over term id -> prerequisite ids."""
    found = []
    state: dict[str, int] = {}  # 1 = on the stack, 2 = done
    for start in sorted(prerequisites):
        if start in state:
            continue
        stack = [(start, iter(prerequisites[start]))]
        path = [start]
        state[start] = 1
        while stack:
            node, children = stack[-1]
            child = next((c for c in children if c in prerequisites), None)
            if child is None:
                state[node] = 2
                stack.pop()
                path.pop()
            elif state.get(child) == 1:
                found.append((node, child, path[path.index(child):] + [child]))
            elif child not in state:
                state[child] = 1
                path.append(child)
                stack.append((child, iter(prerequisites[child])))
    return found


def _learning_order(terms: dict[str, Term], key=None) -> tuple[list[str], dict[str, set[str]]]:
    """A topological order of prerequisites (ties by ``key``, default the name) and, per term,
    what it unlocks."""
    key = key or (lambda t: (t.term.casefold(), t.id))
    rank = {tid: i for i, tid in enumerate(sorted(terms, key=lambda tid: key(terms[tid])))}
    by_rank = sorted(terms, key=rank.__getitem__)
    next_up: dict[str, set[str]] = {tid: set() for tid in terms}
    indegree = dict.fromkeys(terms, 0)
    for term in terms.values():
        for pre in term.prerequisites:
            if pre in terms:
                next_up[pre].add(term.id)
                indegree[term.id] += 1
    heap = [rank[t] for t, d in indegree.items() if d == 0]  # ranks: integers compare fast
    heapq.heapify(heap)
    order: list[str] = []
    while heap:
        tid = by_rank[heapq.heappop(heap)]
        order.append(tid)
        for nxt in next_up[tid]:
            indegree[nxt] -= 1
            if indegree[nxt] == 0:
                heapq.heappush(heap, rank[nxt])
    return order, next_up


def _placement(terms: dict[str, Term], order: list[str], categories: dict[str, Category],
               loaded: Loaded, problems: list[Problem]) -> tuple[list[Category], dict[str, int]]:
    """The learning path's stages, and the stage (its index) of each term. The stages are
    those of ``_path.yaml`` (an entry joins one with ``stage:``), else one per category in
    category order. A term goes into its own stage, or a later one if a prerequisite comes later
    (an explicit ``stage:`` that comes before a prerequisite's is a problem); a term without one
    goes into the first stage after its prerequisites."""
    declared = sorted(loaded.stages.values(), key=lambda s: (s.order, s.id))
    where = loaded.stage_file or "glossary/_path.yaml"
    kinds = declared or list(categories.values())
    index = {s.id: i for i, s in enumerate(kinds)}
    own: dict[str, int] = {}
    for term in terms.values():
        if term.stage and term.stage in index and declared:
            own[term.id] = index[term.stage]
        elif term.stage:
            hint = (f"{did_you_mean(term.stage, index)}; declare it in {where} or use one of: "
                    f"{', '.join(index)}" if declared else
                    f"; {where} declares no stages: create it with "
                    f"`{term.stage}: {{name: ..., order: 1}}` or remove this field")
            problems.append(Problem(term.where, term.line("stage"),
                                    f"unknown stage '{term.stage}'{hint}", "stage"))
        elif not declared and term.category in index:
            own[term.id] = index[term.category]
    placed: dict[str, int] = {}
    for tid in order:  # topological: every prerequisite is placed first
        term = terms[tid]
        after = [(placed[p], p) for p in term.prerequisites if p in placed]
        latest, pre = max(after, default=(0, ""))
        mine = own.get(tid, latest)
        if term.stage and tid in own and mine < latest:
            problems.append(Problem(term.where, term.line("stage"),
                                    f"stage '{term.stage}' comes before stage '{kinds[latest].id}' "
                                    f"of its prerequisite '{pre}'; move this term to that stage or "
                                    "a later one, or drop the prerequisite", "stage"))
        placed[tid] = max(mine, latest)
    for tid in terms:  # in a prerequisite cycle (reported already): its own stage, else the last
        placed.setdefault(tid, own.get(tid, len(kinds) - 1 if kinds else 0))
    return kinds, placed


def _learning_path(terms: dict[str, Term], order: list[str], categories: dict[str, Category],
                   kinds: list[Category], placed: dict[str, int]) -> list[Stage]:
    """The learning path in named stages (see ``_placement``). Within a stage: the fewest
    prerequisites below first (a term after all of its own), then by category and name."""
    depth: dict[str, int] = {}  # the longest chain of prerequisites below a term
    for tid in order:
        depth[tid] = 1 + max((depth[p] for p in terms[tid].prerequisites if p in depth), default=-1)
    cat_order = {cid: i for i, cid in enumerate(categories)}
    path = _learning_order(terms, key=lambda t: (placed[t.id], depth.get(t.id, 0),
                                                  cat_order.get(t.category, len(cat_order)),
                                                  t.term.casefold(), t.id))[0]
    path += sorted(set(terms) - set(path), key=lambda t: (placed[t], terms[t].term.casefold(), t))
    members: dict[int, list[str]] = {}
    for tid in path:
        members.setdefault(placed[tid], []).append(tid)
    if not kinds:  # no categories either: one unnamed stage would do, name it plainly
        kinds = [Category("all", "All terms", "", 0)]
    return [Stage(kinds[i].id, kinds[i].name, kinds[i].description, tuple(members[i]))
            for i in sorted(members)]
