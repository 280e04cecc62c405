"""The concept map: every term as a node, prerequisites as arrows, related terms as lines,
coloured by category, laid out at build time (deterministic: same glossary, same bytes).

Layout: each category is a cluster whose terms sit on a sunflower spiral in learning-path order
(even spacing at any size, O(n)); clusters sit round a circle, large enough not to overlap.
Small glossaries (up to ``REFINE_UP_TO`` terms) are then relaxed by a few hundred steps of a
force-directed layout (Fruchterman and Reingold 1991) that keeps linked terms close and each
category together. The map is one SVG file whose nodes are links to the term pages: it works
on its own (no script) and the map page inlines it, adding pan, zoom and search
(``termlab-map.js``)."""

from __future__ import annotations

import math
import posixpath
from html import escape

import numpy as np

from ..model import Glossary
from ..render import urls

SPACING = 60.0  # distance between neighbouring nodes on a cluster's spiral (SVG units)
RADIUS = 7.0  # a node's circle
REFINE_UP_TO = 400  # terms; above this the O(n²) relaxation would cost seconds
STEPS = 300
LIGHT = ("#1565c0", "#c62828", "#2e7d32", "#6a1b9a", "#e65100", "#00838f", "#ad1457", "#5d4037")  # as termlab.css
CHUNK = 250  # nodes whose edges share one path
BIG = 2000  # terms; a bigger map hides its edges and labels while zoomed far out (termlab.css)
GOLDEN = math.pi * (3 - math.sqrt(5))


def edges(glossary: Glossary) -> tuple[list[tuple[str, str]], list[tuple[str, str]]]:
    """Arrows (prerequisite → term that builds on it) and lines (related or see-also pairs,
    once each, and none where an arrow joins the same two terms)."""
    terms = glossary.terms
    arrows = sorted({(p, tid) for tid, t in terms.items() for p in t.prerequisites if p in terms and p != tid})
    joined = {frozenset(a) for a in arrows}
    lines = sorted({tuple(sorted((tid, o))) for tid, t in terms.items() for o in (*t.related, *t.see_also)
                    if o in terms and o != tid and frozenset((tid, o)) not in joined})
    return arrows, lines


def layout(glossary: Glossary) -> dict[str, tuple[float, float]]:
    """Each term's position (SVG units, rounded: the file is byte-stable)."""
    order = {tid: i for i, tid in enumerate(glossary.learning_order)}
    clusters = [[t for t in sorted(glossary.members.get(cid, []), key=lambda t: (order.get(t, 1 << 30), t))]
                for cid in glossary.categories]
    placed = {t for c in clusters for t in c}
    clusters.append(sorted(t for t in glossary.terms if t not in placed))  # unknown category
    clusters = [c for c in clusters if c]
    radii = [SPACING * math.sqrt(len(c) + 1) for c in clusters]
    ring = 0.0 if len(clusters) == 1 else max(sum(2.3 * r for r in radii) / (2 * math.pi),
                                               max(radii) * 1.15 / math.sin(math.pi / len(clusters)))
    ids, pos, group = [], [], []
    for k, members in enumerate(clusters):
        angle = 2 * math.pi * k / len(clusters) - math.pi / 2
        cx, cy = ring * math.cos(angle), ring * math.sin(angle)
        for i, tid in enumerate(members):
            r, a = SPACING * math.sqrt(i + 0.5), i * GOLDEN
            ids.append(tid)
            pos.append((cx + r * math.cos(a), cy + r * math.sin(a)))
            group.append(k)
    xy = np.array(pos, dtype=float).reshape(-1, 2)
    if 2 < len(ids) <= REFINE_UP_TO:
        index = {tid: i for i, tid in enumerate(ids)}
        arrows, lines = edges(glossary)
        xy = _relax(xy, np.array(group), [(index[a], index[b]) for a, b in arrows + lines])
        xy = _unstack(xy, np.array([_label_width(glossary.terms[t].term) for t in ids]))
    xy -= xy.min(axis=0) - SPACING
    return {tid: (round(float(x), 1), round(float(y), 1)) for tid, (x, y) in zip(ids, xy, strict=True)}


def _relax(xy: np.ndarray, group: np.ndarray, links: list[tuple[int, int]]) -> np.ndarray:
    """Fruchterman–Reingold with a pull towards each category's centre, cooled linearly."""
    n = len(xy)
    k = SPACING * 1.6  # the ideal distance
    temp = SPACING * 2.0
    same = group[:, None] == group[None, :]
    link = np.zeros((n, n), dtype=bool)
    for a, b in links:
        link[a, b] = link[b, a] = True
    for step in range(STEPS):
        delta = xy[:, None, :] - xy[None, :, :]
        dist = np.maximum(np.hypot(delta[..., 0], delta[..., 1]), 1e-3)
        force = k * k / dist ** 2  # repulsion between every pair
        force -= np.where(link, dist / k, 0.0)  # springs along links
        force -= np.where(same, 0.02 * dist / k, 0.0)  # categories hold together
        np.fill_diagonal(force, 0.0)
        move = (delta * force[..., None]).sum(axis=1)
        length = np.maximum(np.hypot(move[:, 0], move[:, 1]), 1e-9)
        xy = xy + move / length[:, None] * np.minimum(length, temp * (1 - step / STEPS))[:, None]
    return xy


def _label_width(name: str) -> float:
    """About how wide a node and its label are drawn (13 px sans-serif: ~7 px a character)."""
    return RADIUS * 2 + 3 + 7.0 * len(name)


def _unstack(xy: np.ndarray, widths: np.ndarray, rounds: int = 300) -> np.ndarray:
    """Move nodes apart until no two labels overlap: each overlapping pair is pushed apart
    along the axis where they overlap least (vertically when that is cheaper)."""
    height = 22.0
    order = np.subtract.outer(np.arange(len(xy)), np.arange(len(xy))) * 1e-9  # breaks ties, stably
    for _ in range(rounds):
        x0 = xy[:, 0] - RADIUS
        x1 = x0 + widths
        ox = np.minimum(x1[:, None], x1[None, :]) - np.maximum(x0[:, None], x0[None, :])
        oy = height - np.abs(xy[:, 1][:, None] - xy[:, 1][None, :])
        hit = (ox > 0) & (oy > 0)
        np.fill_diagonal(hit, False)
        if not hit.any():
            break
        vertical = hit & (oy <= ox)
        sx = np.sign(xy[:, 0][:, None] - xy[:, 0][None, :] + order)
        sy = np.sign(xy[:, 1][:, None] - xy[:, 1][None, :] + order)
        push_x = (np.where(hit & ~vertical, ox, 0) * sx).sum(axis=1)
        push_y = (np.where(vertical, oy, 0) * sy).sum(axis=1)
        xy = xy + np.stack([push_x, push_y], axis=1) * 0.25
    return xy


STYLE = ("<style>.tm-line{stroke:#9e9e9e;stroke-width:1.2;fill:none}"  # the file on its own; the page restyles
         ".tm-arrow{stroke:#546e7a;stroke-width:1.6;fill:none}.tm-head{fill:#546e7a}"
         ".tm-node text{font:13px sans-serif;fill:#222;paint-order:stroke;stroke:#fff;stroke-width:3px}"
         + "".join(f".tm-c{i} circle{{fill:{c}}}" for i, c in enumerate(LIGHT)) + "</style>")


def map_svg(glossary: Glossary) -> bytes:
    """The concept map as a standalone SVG; links are relative to the map's folder. Drawn
    again only when what it shows changed (serve rebuilds after every save; an edited summary
    or body leaves the map as it was, and at 10,000 terms drawing it takes ~0.5 s)."""
    return _drawn(_shown(glossary), glossary)


def _shown(glossary: Glossary) -> tuple:
    """Everything ``map_svg`` reads from the glossary."""
    terms = tuple((tid, t.term, t.category, tuple(t.prerequisites), tuple(t.related), tuple(t.see_also))
                  for tid, t in glossary.terms.items())
    members = tuple((cid, tuple(ids)) for cid, ids in glossary.members.items())
    return terms, tuple(glossary.categories), members, tuple(glossary.learning_order)


_last: list[tuple[tuple, bytes]] = []  # the last map drawn, with what it showed


def _drawn(shown: tuple, glossary: Glossary) -> bytes:
    if _last and _last[0][0] == shown:
        return _last[0][1]
    svg = _draw(glossary)
    _last[:] = [(shown, svg)]
    return svg


def _draw(glossary: Glossary) -> bytes:
    at = layout(glossary)
    arrows, lines = edges(glossary)
    width = max((x + _label_width(glossary.terms[t].term) for t, (x, _) in at.items()), default=0) + SPACING / 2
    height = max((y for _, y in at.values()), default=0) + SPACING
    big = len(at) > BIG
    colour = {cid: i % urls.MAP_COLOURS for i, cid in enumerate(glossary.categories)}
    out = [f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {width:.0f} {height:.0f}" '
           f'class="termlab-map-svg{" tm-big tm-far" if big else ""}" role="group" '
           f'aria-label="Concept map of {len(at)} terms" data-spacing="{SPACING:g}">', STYLE,
           *_paths(at, "tm-line", lines, _segments),
           *_paths(at, "tm-arrow", arrows, lambda at, chunk: _segments(at, chunk, shorten=RADIUS + 2)),
           *_paths(at, "tm-head", arrows, _heads)]
    folder = posixpath.dirname(urls.MAP_SVG)
    for tid, (x, y) in at.items():
        term = glossary.terms[tid]
        href = posixpath.relpath(urls.term_url(tid), folder) + "/"
        label = "" if big else f'<text x="{x + RADIUS + 3:g}" y="{y + 4:g}">{escape(term.term)}</text>'
        out.append(f'<a href="{escape(href)}" class="tm-node tm-c{colour.get(term.category, urls.MAP_COLOURS - 1)}" '
                   f'aria-label="{escape(term.term)}"><circle cx="{x:g}" cy="{y:g}" r="{RADIUS:g}"/>{label}</a>')
    out.append("</svg>\n")
    return "\n".join(out).encode()


def _paths(at: dict[str, tuple[float, float]], kind: str, pairs: list[tuple[str, str]], draw) -> list[str]:
    """Edges as a few paths, grouped by where their first end sits (nodes in layout order,
    CHUNK at a time): one element draws many segments, and the browser skips painting the
    groups outside the view."""
    place = {tid: i // CHUNK for i, tid in enumerate(at)}
    groups: dict[int, list[tuple[str, str]]] = {}
    for pair in pairs:
        groups.setdefault(place[pair[0]], []).append(pair)
    return [f'<path class="{kind}" d="{draw(at, chunk)}"/>' for _, chunk in sorted(groups.items())]


def _segments(at: dict[str, tuple[float, float]], pairs: list[tuple[str, str]], shorten: float = 0.0) -> str:
    """One path for many straight segments (one element draws them all, fast at 10,000 terms)."""
    parts = []
    for a, b in pairs:
        (x1, y1), (x2, y2) = at[a], at[b]
        if shorten:  # stop short of the target's circle, where the arrowhead sits
            d = math.hypot(x2 - x1, y2 - y1) or 1.0
            x2, y2 = x2 - (x2 - x1) * shorten / d, y2 - (y2 - y1) * shorten / d
        parts.append(f"M{x1:.1f} {y1:.1f}L{x2:.1f} {y2:.1f}")
    return "".join(parts)


def _heads(at: dict[str, tuple[float, float]], arrows: list[tuple[str, str]]) -> str:
    """Every arrowhead as a small triangle in one path, just outside the target's circle."""
    parts = []
    for a, b in arrows:
        (x1, y1), (x2, y2) = at[a], at[b]
        d = math.hypot(x2 - x1, y2 - y1) or 1.0
        ux, uy = (x2 - x1) / d, (y2 - y1) / d
        tx, ty = x2 - ux * (RADIUS + 1), y2 - uy * (RADIUS + 1)
        bx, by = tx - ux * 9, ty - uy * 9
        parts.append(f"M{tx:.1f} {ty:.1f}L{bx - uy * 4.5:.1f} {by + ux * 4.5:.1f}"
                     f"L{bx + uy * 4.5:.1f} {by - ux * 4.5:.1f}Z")
    return "".join(parts)
