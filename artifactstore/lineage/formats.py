"""Export formats for the lineage graph: node-link JSON, GraphML, Graphviz DOT, Mermaid.

The lineage graph is a :class:`networkx.DiGraph` of versions and runs (the runs and
their ``use``/``output`` events are docs/design.md §12; versions are §10.1). Its schema:

Version nodes
    id ``"<artifact>:v<N>"`` (e.g. ``"dataset:v0"``); attributes ``kind="version"``,
    ``artifact`` str, ``number`` int, ``type`` str, ``digest`` str (64 hex; ``type``
    and ``digest`` may be None when ``missing``), ``created_at`` str|None,
    ``aliases`` list[str] (empty unless the version is live), ``missing`` bool (a run
    references the version but its record is gone), ``deleted`` bool (deleted or
    purged), and the state attributes below.
Run nodes
    id ``"run:<run_id>"``; attributes ``kind="run"``, ``run_id`` str, ``name``
    str|None, ``job_type`` str|None, ``status`` str (``running``, ``finished``,
    ``failed``, ``crashed``), ``started_at`` str, ``ended_at`` str|None,
    ``git_commit`` str|None, ``git_dirty`` bool|None, ``missing`` and ``deleted``
    bool, and the state attributes below.
State attributes (every node)
    ``state`` str: ``live``, ``deleted``, ``purged`` or ``missing``
    (:data:`artifactstore.lineage.graph.STATES`); ``state_at``, ``state_by``,
    ``state_reason`` str|None: when, by whom and why it was deleted or purged (None
    while live). Every format carries them: JSON and GraphML as attributes (GraphML
    drops the None ones), DOT and Mermaid as a ``(deleted)`` / ``(purged)`` /
    ``(missing)`` line in the label and a dashed grey style.
Edges
    version -> run with ``kind="used"``; run -> version with ``kind="produced"``.

Run names, job types and aliases are user text, so every format escapes them: a
hostile name can neither break the syntax nor inject markup. Every output is
deterministic: nodes in sorted id order, edges in sorted ``(source, target)`` order,
so equal graphs export to equal text whatever order they were built in.

- ``json``: :func:`networkx.node_link_data` with the ``"edges"`` key; None and
  lists kept as they are.
- ``graphml``: GraphML cannot hold None or lists, so None attributes are dropped and
  lists are joined with ``","`` (an alias that contains a comma does not split back).
  XML 1.0 cannot hold most control characters at all; those are rejected.
- ``dot``: Graphviz, hand-written so neither pydot nor pygraphviz is needed.
- ``mermaid``: a ``flowchart LR`` with generated ids ``n0, n1, …``.
"""

from __future__ import annotations

import io
import json
import re
import xml.etree.ElementTree as ET
from collections.abc import Callable, Iterable, Mapping
from typing import Any, Final

# networkx ships no type information and the project has no stubs for it.
import networkx as nx

from artifactstore.core.errors import InvalidInputError
from artifactstore.lineage.graph import EXPORT_FORMATS

__all__ = [
    "FORMATS",
    "export_graph",
    "from_graphml",
    "to_dot",
    "to_graphml",
    "to_mermaid",
    "to_node_link",
]

FORMATS: Final = EXPORT_FORMATS

_SCALARS: Final = (str, int, float, bool)
# Characters XML 1.0 cannot hold, not even as character references.
_XML_INVALID: Final = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff]")
_CONTROL: Final = re.compile("[\x00-\x1f\x7f-\x9f]")
_FAILED: Final = frozenset({"failed", "crashed"})


def export_graph(graph: nx.DiGraph, fmt: str) -> str:
    """The lineage ``graph`` as text in format ``fmt``, one of :data:`FORMATS`."""
    writers: dict[str, Callable[[nx.DiGraph], str]] = {
        "json": _to_json,
        "graphml": to_graphml,
        "dot": to_dot,
        "mermaid": to_mermaid,
    }
    writer = writers.get(fmt)
    if writer is None:
        raise InvalidInputError(
            f"unknown lineage format {fmt!r:.40}: use one of {', '.join(FORMATS)}"
        )
    return writer(graph)


def to_node_link(graph: nx.DiGraph) -> dict[str, Any]:
    """Node-link data (``"nodes"``, ``"edges"``), nodes sorted by id and edges sorted.

    Read it back with ``networkx.node_link_graph(data, edges="edges")``.
    """
    data: dict[str, Any] = nx.node_link_data(_sorted_copy(graph, _sorted_attrs), edges="edges")
    return data


def to_graphml(graph: nx.DiGraph) -> str:
    """GraphML text: None attributes dropped, lists joined with ``","``."""
    for name, value in graph.graph.items():
        _check_xml(f"graph attribute {name!r}", value)
    for node, attrs in graph.nodes(data=True):
        _check_xml(f"node id {node!r:.80}", node)
        for name, value in attrs.items():
            _check_xml(f"attribute {name!r} of node {node!r:.80}", value)
    for source, target, attrs in graph.edges(data=True):
        for name, value in attrs.items():
            _check_xml(f"attribute {name!r} of edge {source!r:.80} -> {target!r:.80}", value)
    buffer = io.BytesIO()
    # write_graphml_xml, not write_graphml: the latter picks lxml when it is installed,
    # and the output must not depend on what else is installed.
    nx.write_graphml_xml(_sorted_copy(graph, _graphml_attrs), buffer)
    # ElementTree writes a carriage return in text as it is, and XML parsers read it
    # back as a newline; the pretty-printer only ever writes "\n", so every "\r" here
    # is data.
    return buffer.getvalue().decode("utf-8").replace("\r", "&#13;")


def from_graphml(text: str) -> nx.DiGraph:
    """Read back a graph written by :func:`to_graphml` (lists stay comma-joined)."""
    try:
        graph = nx.parse_graphml(text)
    except (ET.ParseError, nx.NetworkXError) as err:
        raise InvalidInputError(f"not a GraphML lineage graph: {err}") from err
    if not graph.is_directed() or graph.is_multigraph():
        raise InvalidInputError(
            "not a GraphML lineage graph: expected a directed graph without parallel edges"
        )
    return graph


def to_dot(graph: nx.DiGraph) -> str:
    """Graphviz DOT: versions as rounded boxes, runs as ellipses coloured by status."""
    lines = [
        "digraph lineage {",
        "  rankdir=LR;",
        '  node [fontname="Helvetica"];',
        '  edge [fontname="Helvetica", fontsize=10];',
    ]
    for node in _sorted_nodes(graph):
        attrs = graph.nodes[node]
        label = "\\n".join(_dot_escape(line, label=True) for line in _label_lines(node, attrs))
        style = _dot_style(attrs)
        lines.append(f'  "{_dot_escape(str(node))}" [label="{label}", {style}];')
    for source, target in _sorted_edges(graph):
        kind = graph.edges[source, target].get("kind")
        edge_label = f' [label="{_dot_escape(str(kind), label=True)}"]' if kind else ""
        lines.append(f'  "{_dot_escape(str(source))}" -> "{_dot_escape(str(target))}"{edge_label};')
    lines.append("}")
    return "\n".join(lines) + "\n"


def to_mermaid(graph: nx.DiGraph) -> str:
    """A Mermaid ``flowchart LR``: versions as rounded boxes, runs as stadiums."""
    ids = {node: f"n{index}" for index, node in enumerate(_sorted_nodes(graph))}
    lines = ["flowchart LR"]
    for node, node_id in ids.items():
        attrs = graph.nodes[node]
        label = "<br>".join(_mermaid_escape(line) for line in _label_lines(node, attrs))
        if attrs.get("kind") == "run":
            shape = f'(["{label}"])'
            status = attrs.get("status")
            css = "failed" if status in _FAILED else "running" if status == "running" else ""
        else:
            shape = f'("{label}")'
            css = ""
        if _state(attrs) != "live":  # never drawn like a live node
            css = "unavailable"
        lines.append(f"    {node_id}{shape}" + (f":::{css}" if css else ""))
    for source, target in _sorted_edges(graph):
        kind = graph.edges[source, target].get("kind")
        arrow = f"-->|{_mermaid_escape(str(kind))}|" if kind else "-->"
        lines.append(f"    {ids[source]} {arrow} {ids[target]}")
    lines += [
        "    classDef failed fill:#fdd,stroke:#c00,color:#600",
        "    classDef running fill:#fed,stroke:#e80",
        "    classDef unavailable stroke-dasharray:5 5,color:#777",
    ]
    return "\n".join(lines) + "\n"


# --- helpers -------------------------------------------------------------------------


def _to_json(graph: nx.DiGraph) -> str:
    return json.dumps(to_node_link(graph), indent=2, sort_keys=True, ensure_ascii=False) + "\n"


def _sorted_nodes(graph: nx.DiGraph) -> list[Any]:
    return sorted(graph.nodes, key=str)


def _sorted_edges(graph: nx.DiGraph) -> list[tuple[Any, Any]]:
    return sorted(graph.edges, key=lambda edge: (str(edge[0]), str(edge[1])))


def _sorted_copy(
    graph: nx.DiGraph, convert: Callable[[Mapping[str, Any]], dict[str, Any]]
) -> nx.DiGraph:
    """A copy with nodes and edges inserted in sorted order, attributes converted."""
    copy = nx.DiGraph()
    copy.graph.update(convert(graph.graph))
    for node in _sorted_nodes(graph):
        copy.add_node(node, **convert(graph.nodes[node]))
    for source, target in _sorted_edges(graph):
        copy.add_edge(source, target, **convert(graph.edges[source, target]))
    return copy


def _sorted_attrs(attrs: Mapping[str, Any]) -> dict[str, Any]:
    return {name: attrs[name] for name in sorted(attrs)}


def _graphml_attrs(attrs: Mapping[str, Any]) -> dict[str, Any]:
    converted: dict[str, Any] = {}
    for name in sorted(attrs):
        value = attrs[name]
        if value is None:
            continue
        if isinstance(value, list | tuple):
            value = ",".join(str(item) for item in value)
        if not isinstance(value, _SCALARS):
            raise InvalidInputError(
                f"attribute {name!r} is a {type(value).__name__}: GraphML holds only "
                "str, int, float, bool (and lists, joined with ','); use the json format"
            )
        converted[name] = value
    return converted


def _check_xml(what: str, value: object) -> None:
    texts: Iterable[object] = value if isinstance(value, list | tuple) else (value,)
    for text in texts:
        if isinstance(text, str) and (bad := _XML_INVALID.search(text)):
            raise InvalidInputError(
                f"{what} contains U+{ord(bad.group()):04X}, which GraphML (XML 1.0) "
                "cannot hold; use the json format"
            )


def _label_lines(node: object, attrs: Mapping[str, Any]) -> list[str]:
    """Display lines: a version's id, aliases and state; a run's name, job and status."""
    if attrs.get("kind") == "run":
        job = " · ".join(str(part) for part in (attrs.get("job_type"), attrs.get("status")) if part)
        lines = [str(attrs.get("name") or attrs.get("run_id") or node)] + ([job] if job else [])
    else:
        aliases = attrs.get("aliases") or []
        lines = [str(node)] + ([", ".join(str(a) for a in aliases)] if aliases else [])
    state = _state(attrs)
    if state != "live":
        lines.append(f"({state})")
    # User text may hold line breaks of its own; each becomes a line of the label.
    return [part for line in lines for part in (line.splitlines() or [""])]


def _dot_escape(text: str, *, label: bool = False) -> str:
    """Text for inside a DOT double-quoted string.

    A backslash is doubled so it cannot escape the closing quote, and in labels so
    Graphviz does not read ``\\N``, ``\\l`` and friends as escapes. In labels "&" is
    written as an entity because Graphviz decodes HTML entities in every label.
    """
    text = text.replace("\\", "\\\\").replace('"', '\\"').replace("\t", " ")
    text = _CONTROL.sub("\ufffd", text)
    return text.replace("&", "&amp;") if label else text


_MERMAID_SAFE: Final = frozenset(" .,:-_/+=@!?'·")


def _mermaid_escape(text: str) -> str:
    """Text for inside a quoted Mermaid label: anything not plainly safe as ``#<code>;``.

    Mermaid decodes ``#quot;``-style entity codes in labels, so quotes, brackets,
    ``#``, ``;``, ``%%`` comments and HTML markup cannot end the label or inject.
    """
    return "".join(
        char
        if char.isalnum() or char in _MERMAID_SAFE
        else "#65533;"
        if _CONTROL.fullmatch(char)
        else f"#{ord(char)};"
        for char in text
    )


def _state(attrs: Mapping[str, Any]) -> str:
    """``state``; graphs from before it existed (e.g. read back) say missing/deleted."""
    state = attrs.get("state")
    if isinstance(state, str):
        return state
    return "missing" if attrs.get("missing") else "deleted" if attrs.get("deleted") else "live"


def _dot_style(attrs: Mapping[str, Any]) -> str:
    if _state(attrs) != "live":
        shape = "ellipse" if attrs.get("kind") == "run" else "box"
        return f'shape={shape}, style="rounded,dashed", color="#777777", fontcolor="#777777"'
    if attrs.get("kind") == "run":
        status = attrs.get("status")
        if status in _FAILED:
            return 'shape=ellipse, style=filled, fillcolor="#ffdddd", color="#cc0000"'
        if status == "running":
            return 'shape=ellipse, style=filled, fillcolor="#ffeedd", color="#ee8800"'
        return "shape=ellipse"
    return 'shape=box, style="rounded"'
