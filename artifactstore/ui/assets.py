"""The static files of the UI, read from the installed package.

Vocabulary: an **asset** is a file under ``artifactstore/ui/static/`` named by its
path there (``"graph.js"``, ``"vendor/cytoscape.min.js"``). Vendored libraries live
under ``static/vendor/`` beside their licence files (``<name>.LICENSE``) and are
listed in :data:`VENDORED` with their npm package and version, as fetched with
``npm pack``; docs/dependencies.md says why each is there.
"""

from __future__ import annotations

from importlib import resources
from typing import Final

from artifactstore.core.errors import NotFoundError

__all__ = ["VENDORED", "asset_text"]

#: vendored file -> (npm package@version, licence file); the bundled dagre of
#: cytoscape-dagre keeps its own licence beside it
VENDORED: Final = {
    "vendor/cytoscape.min.js": ("cytoscape@3.35.0", "vendor/cytoscape.LICENSE"),
    "vendor/cytoscape-dagre.min.js": ("cytoscape-dagre@4.0.1 (bundles @dagrejs/dagre 3)",
                                      "vendor/cytoscape-dagre.LICENSE vendor/dagre.LICENSE"),
    "vendor/uPlot.iife.min.js": ("uplot@1.6.32", "vendor/uPlot.LICENSE"),
    "vendor/uPlot.min.css": ("uplot@1.6.32", "vendor/uPlot.LICENSE"),
}


def asset_text(name: str) -> str:
    """The text of asset ``name`` (see the module docstring)."""
    if name.startswith("/") or ".." in name.split("/"):
        raise NotFoundError(f"no UI asset {name!r:.80}")
    path = resources.files("artifactstore.ui").joinpath("static", *name.split("/"))
    try:
        return path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise NotFoundError(f"UI asset {name!r:.80} is missing from the installed package: "
                            "reinstall artifactstore") from None
