"""Self-contained HTML pages of the lineage graph and of an audit.

Vocabulary:

- **page**: one HTML file that holds everything it shows: the data as JSON in a
  ``<script type="application/json">`` block, our script and style
  (``ui/static/graph.js``, ``report.css``) and the vendored graph libraries
  (``ui/static/vendor/``: cytoscape.js with the dagre layered layout) inline. It
  makes no request when opened: its Content-Security-Policy allows no source at
  all but its own inline scripts (by hash) and styles, so a copy mailed or opened
  offline shows the same picture.
- **page data**: ``{"kind", "title", "subtitle", "focus", "nodes", "edges",
  "audit"}``; a node is ``{"id", "kind", "label", "state", "status", "facts"}``,
  where ``facts`` are the graph's node attributes (artifactstore.lineage.formats)
  plus, for runs, their tags, config, summary and error, and for versions their
  description and metadata (up to :data:`DETAILED_VERSIONS` versions); ``audit``
  is :meth:`AuditReport.as_dict` or None.

Escaping: every name, description and value is user data. The JSON block escapes
``<``, ``>`` and ``&`` (so no text can close the block or open a comment) and the
page script writes values with ``textContent`` only; the hash-only script policy
means even an injected ``<script>`` element would not run.

Why no template engine: the page is one fixed skeleton with five slots filled once;
a ``str`` substitution in one pass (:func:`_fill`) keeps ``lineage --html`` in the
base install. The web UI (:mod:`.lineagepages`) draws the same page data with the same
script inside its own Jinja2 pages.
"""

from __future__ import annotations

import base64
import hashlib
import html
import json
import re
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, Final

import artifactstore
from artifactstore.core.errors import ArtifactStoreError
from artifactstore.ui.assets import asset_text

if TYPE_CHECKING:
    import networkx as nx

    from artifactstore.lineage.audit import AuditReport

__all__ = ["Page", "audit_data", "audit_page", "graph_data", "lineage_page"]

#: past this many versions a page leaves out their description and metadata: each one is a
#: record read, and a project-wide page must not cost one request per version
DETAILED_VERSIONS: Final = 500
SCRIPTS: Final = ("vendor/cytoscape.min.js", "vendor/cytoscape-dagre.min.js", "graph.js")
_SLOT: Final = re.compile(r"@@([A-Z]+)@@")
_JSON_ESCAPES: Final = {"<": "\\u003c", ">": "\\u003e", "&": "\\u0026",
                        "\u2028": "\\u2028", "\u2029": "\\u2029"}


@dataclass(frozen=True, slots=True)
class Page:
    """A written page: its HTML, the node it centres on (None: the whole project) and
    the size of the graph it draws."""

    html: str
    focus: str | None
    nodes: int
    edges: int


def lineage_page(store: artifactstore.Store, ref: str | None = None, *,
                 downstream: bool = False, depth: int | None = None) -> Page:
    """The page of ``ref``'s upstream (or downstream) lineage, or of the whole project's
    graph when ``ref`` is None."""
    if ref is None:
        graph, focus = store.lineage(sync=True), None
        title = f"Lineage of project {store.project}"
    else:
        focus = store.lineage_node(ref, sync=True)
        query = store.downstream if downstream else store.upstream
        graph = query(focus, depth, sync=False)
        title = f"{'Downstream' if downstream else 'Upstream'} lineage of {focus}"
    data = graph_data(store, graph, focus=focus, title=title, written_at=datetime.now(UTC))
    return Page(_render(data), focus, graph.number_of_nodes(), graph.number_of_edges())


def audit_page(store: artifactstore.Store, report: AuditReport) -> Page:
    """The page of an audit: its provenance graph, findings, alias history, integrity."""
    data = audit_data(store, report, written_at=datetime.now(UTC))
    graph = report.graph
    return Page(_render(data), report.ref, graph.number_of_nodes(), graph.number_of_edges())


def audit_data(store: artifactstore.Store, report: AuditReport, *,
               written_at: datetime | None = None) -> dict[str, Any]:
    """The page data (module docstring) of an audit: the report page's and the app's."""
    verdict = "OK" if report.ok else f"{len(report.flags)} finding(s)"
    data = graph_data(store, report.graph, focus=report.ref,
                      title=f"Audit of {report.ref}: {verdict}", written_at=written_at)
    data["kind"] = "audit"
    data["audit"] = json.loads(report.to_json())
    return data


def graph_data(store: artifactstore.Store, graph: nx.DiGraph, *, focus: str | None,
               title: str, written_at: datetime | None = None) -> dict[str, Any]:
    """The page data (module docstring) of ``graph``, a lineage graph of ``store``.

    ``written_at`` is when a page file is written: its subtitle says so, since a file
    outlives the state it shows. The web app's pages show the state of the moment they
    are asked for and pass None, so the same state gives the same data."""
    runs = {f"run:{r.run_id}": r for r in store.runs(include_deleted=True, sync=False)}
    detailed = sum(kind == "version" for _, kind in graph.nodes(data="kind")) <= DETAILED_VERSIONS
    nodes = []
    for node, attrs in sorted(graph.nodes(data=True)):
        facts = {k: v for k, v in attrs.items() if k not in ("kind", "deleted")}
        if attrs["kind"] == "run":
            run = runs.get(node)
            if run is not None:
                facts.update(tags=list(run.tags), by=run.by, config=run.config,
                             summary=run.summary, error=run.error, code=run.code)
            label = f"{attrs.get('name') or attrs.get('job_type') or attrs['run_id'][:12]}\n" \
                    f"[{attrs.get('status')}]"
        else:
            if detailed:
                facts.update(_version_facts(store, node, attrs))
            aliases = ",".join(attrs.get("aliases") or [])
            label = node + (f"\n{aliases}" if aliases else "")
        nodes.append({"id": node, "kind": attrs["kind"], "label": label,
                      "state": attrs.get("state", "live"), "status": attrs.get("status"),
                      "facts": facts})
    edges = [{"source": s, "target": t, "kind": k} for s, t, k in sorted(graph.edges(data="kind"))]
    counts = (f"{sum(n['kind'] == 'version' for n in nodes)} versions, "
              f"{sum(n['kind'] == 'run' for n in nodes)} runs")
    written = "" if written_at is None else \
        f" · written {written_at.astimezone(UTC):%Y-%m-%d %H:%M:%S} UTC by artifactstore " \
        f"{artifactstore.__version__}"
    return {"kind": "lineage", "title": title, "focus": focus, "nodes": nodes, "edges": edges,
            "audit": None, "subtitle": f"project {store.project} · {counts}{written}"}


def _version_facts(store: artifactstore.Store, node: str, attrs: dict[str, Any]) -> dict[str, Any]:
    if attrs.get("state", "live") != "live":
        return {}  # a deleted version's record answers only through its graph attributes
    try:
        version = store.artifact(node)
    except ArtifactStoreError:
        return {}
    return {"description": version.description, "metadata": dict(version.metadata),
            "size": version.size, "created_by": version.created_by}


def _json_block(data: object) -> str:
    text = json.dumps(data, sort_keys=True, default=str, ensure_ascii=False)
    return re.sub("[<>&\u2028\u2029]", lambda m: _JSON_ESCAPES[m.group()], text)


def _csp_hash(script: str) -> str:
    digest = hashlib.sha256(script.encode("utf-8")).digest()
    return f"'sha256-{base64.b64encode(digest).decode('ascii')}'"


def _render(data: dict[str, Any]) -> str:
    scripts = [asset_text(name) for name in SCRIPTS]
    for name, text in zip(SCRIPTS, scripts, strict=True):
        if "</script" in text.lower():  # would end the inline block early
            raise ArtifactStoreError(f"UI asset {name} cannot be inlined; reinstall artifactstore")
    # Why hashes and no 'unsafe-inline' for scripts: only these exact scripts may run,
    # whatever text the data holds. No connect/img/font source: the page reaches nothing.
    csp = ("default-src 'none'; style-src 'unsafe-inline'; img-src data:; "
           f"script-src {' '.join(_csp_hash(s) for s in scripts)}")
    slots = {
        "CSP": csp,
        "VERSION": html.escape(artifactstore.__version__),
        "TITLE": html.escape(data["title"]),
        "STYLE": asset_text("report.css"),
        "DATA": _json_block(data),
        "SCRIPTS": "\n".join(f"<script>{s}</script>" for s in scripts),
    }
    return _fill(asset_text("report.html"), slots)


def _fill(template: str, slots: dict[str, str]) -> str:
    """``template`` with each ``@@NAME@@`` replaced, in one pass: inserted text is never
    scanned again, so data that looks like a slot stays data."""
    return _SLOT.sub(lambda m: slots[m.group(1)], template)
