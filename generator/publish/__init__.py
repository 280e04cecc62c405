"""What a build publishes besides pages: objects.inv, terms.json, redirects, site trees."""

from __future__ import annotations

import json
from collections.abc import Mapping
from importlib import resources
from typing import Any

from ..model import Glossary, Site
from ..render import urls
from .inventory import inventory_bytes
from .previews import preview_files
from .redirects import redirect_pages
from .search_names import NAMES_PATH, search_names
from .study import study_files, study_paths
from .terms_json import terms_index


def add_published_files(site: Site, glossary: Glossary, demos: Mapping[str, Any],
                        project: str = "termlab", version: str = "", site_url: str = "",
                        audits: Mapping[str, Any] | None = None) -> None:
    """Add objects.inv, terms.json, preview shards and redirect pages to the site's files."""
    site.files["objects.inv"] = inventory_bytes(glossary, project, version)
    index = terms_index(glossary, demos, site_url, audits)
    index["study"] = study_paths(index)
    site.files.update(study_files(index, project, {cid: c.name for cid, c in glossary.categories.items()}))
    site.files["terms.json"] = json.dumps(index, ensure_ascii=False, separators=(",", ":")).encode()
    site.files.update(preview_files(glossary, index))
    site.files[NAMES_PATH] = search_names(index)
    site.files.update(redirect_pages(glossary, site_url))
    if glossary.terms:
        from .concept_map import map_svg  # with numpy: imported here, not at a build's start-up

        site.files[urls.MAP_SVG] = map_svg(glossary)


def site_assets() -> dict[str, bytes]:
    """The site's own CSS and JavaScript, and the math font with its licence, by site-relative path."""
    folder = resources.files("generator.render").joinpath("assets")
    return {f"{urls.ASSETS}/{name}": folder.joinpath(name).read_bytes()
            for name in ASSETS}


MATH_FONT = "noto-sans-math.woff2"  # cut to a built site's formulas (mathfont.py)
ASSETS = ("termlab.css", "termlab.js", "termlab-search.js", "termlab-listen.js", "termlab-live.js",
          "termlab-sweep.js", "termlab-study.js", "termlab-map.js", "noto-sans-math.woff2", "noto-sans-math-OFL.txt")
