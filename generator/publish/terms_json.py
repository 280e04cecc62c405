"""``terms.json``: the machine-readable index of the glossary (schema: terms.schema.json)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ..model import Glossary
from ..render import urls
from ..text.plain import fill_metrics, plain

FORMAT_VERSION = 1


def terms_index(glossary: Glossary, demos: Mapping[str, Any], site_url: str = "",
                audits: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """The index; a demo's statements carry their kind (finding or check) and, once the seed
    audit of the demo is in (``audits``, by term), how often each held."""
    terms = []
    for tid in sorted(glossary.terms):
        term = glossary.terms[tid]
        category = glossary.categories.get(term.category)
        result = demos.get(tid)
        url = urls.term_url(tid)
        demo = None
        if term.demo is not None:
            demo = {"name": term.demo.name, "source": f"{url}{term.demo.name}.py",
                    "ran": result is not None and not result.error,
                    "figures": [], "models": [], "claims": [], "metrics": []}
            if result is not None and not result.error:
                demo["figures"] = [_figure(f, url) for f in result.figures]
                demo["models"] = [url + m for m in result.models]
                rates = getattr((audits or {}).get(tid), "claims", None)
                demo["claims"] = [{"statement": c.statement, "kind": c.kind, "holds": c.holds,
                                   "numbers": c.numbers,
                                   "audit": {"held": rates[i].held, "runs": rates[i].runs}
                                   if rates and i < len(rates) else None}
                                  for i, c in enumerate(result.claims)]
                demo["metrics"] = [{"name": m.name, "label": m.label, "value": m.value,
                                    "display": m.display} for m in result.metrics]
        ok = result is not None and not result.error
        summary = _fill(term.summary, result) if ok else term.summary
        levels = {k: plain(_fill(v, result) if ok else v) for k, v in term.levels.items()}
        terms.append({
            "id": tid,
            "name": term.term,
            "aliases": term.aliases,
            "summary": plain(summary),
            "levels": levels,
            "url": url,
            "category": {"id": term.category, "name": category.name if category else term.category},
            "tags": term.tags,
            "related": term.related,
            "see_also": term.see_also,
            "prerequisites": term.prerequisites,
            "redirect_from": term.redirect_from,
            "demo": demo,
        })
    return {"format": "termlab-terms", "version": FORMAT_VERSION,
            "site_url": site_url or None, "count": len(terms), "terms": terms}


def _fill(text: str, result: Any) -> str:
    return fill_metrics(text, result.formatted_metrics())


def _figure(fig, url: str) -> dict:
    """A figure's record; a figure with a slider lists its frames (files, values, numbers)."""
    record = {"name": fig.name, "caption": plain(fig.caption), "alt": fig.alt,
              "light": url + fig.light, "dark": url + fig.dark}
    if fig.slider:
        s = fig.slider
        record["slider"] = {"label": s.label, "default": s.default, "frames": [
            {"value": v, "light": url + light, "dark": url + dark, "alt": alt,
             "numbers": {n.label: n.values[k] for n in s.numbers}}
            for k, (v, (light, dark), alt) in enumerate(zip(s.values, s.frames, s.alts, strict=True))]}
    return record

