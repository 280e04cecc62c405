"""What a build publishes besides pages: objects.inv, terms.json, redirects, site trees."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ..model import Glossary
from ..render import Site
from .inventory import inventory_bytes
from .redirects import redirect_pages
from .terms_json import terms_json_bytes


def add_published_files(site: Site, glossary: Glossary, demos: Mapping[str, Any],
                        project: str = "termlab", version: str = "", site_url: str = "") -> None:
    """Add objects.inv, terms.json and redirect pages to the site's files."""
    site.files["objects.inv"] = inventory_bytes(glossary, project, version)
    site.files["terms.json"] = terms_json_bytes(glossary, demos, site_url)
    site.files.update(redirect_pages(glossary, site_url))
