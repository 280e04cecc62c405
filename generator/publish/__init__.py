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
from .terms_json import terms_index


def add_published_files(site: Site, glossary: Glossary, demos: Mapping[str, Any],
                        project: str = "termlab", version: str = "", site_url: str = "") -> None:
    """Add objects.inv, terms.json, preview shards and redirect pages to the site's files."""
    site.files["objects.inv"] = inventory_bytes(glossary, project, version)
    index = terms_index(glossary, demos, site_url)
    site.files["terms.json"] = json.dumps(index, ensure_ascii=False, separators=(",", ":")).encode()
    site.files.update(preview_files(glossary, index))
    site.files.update(redirect_pages(glossary, site_url))


def site_assets() -> dict[str, bytes]:
    """The site's own CSS and JavaScript, by site-relative path."""
    folder = resources.files("generator.render").joinpath("assets")
    return {f"{urls.ASSETS}/{name}": folder.joinpath(name).read_bytes()
            for name in ("termlab.css", "termlab.js")}
