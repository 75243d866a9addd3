"""Lineage export formats: round trips, determinism, and escaping of hostile user text."""

from __future__ import annotations

import itertools
import json
import re
import subprocess
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

import networkx as nx
import pytest

from artifactstore.core.errors import InvalidInputError
from artifactstore.lineage.formats import (
    FORMATS,
    export_graph,
    from_graphml,
    to_dot,
    to_graphml,
    to_mermaid,
    to_node_link,
)

# User text that tries to break out of every format: quotes, backslashes, a newline,
# markup, entities, Mermaid brackets and comment syntax, DOT escapes, unicode.
HOSTILE = 'a"b\\c\n<x>&{y}|[z]#;'
HOSTILE_2 = "%%{init}%% é 数据 &amp; \\N end --> 'q' (p) `m` *s* 😀"

PREPARE = "run:20261126T135110123456Z-1a2b3c4d"
TRAIN = "run:20261126T140000000000Z-0badcafe"
EVALUATE = "run:20261126T150000000000Z-deadbeef"
SERVE = "run:20261126T160000000000Z-00c0ffee"


def version(
    artifact: str, number: int, kind: str = "dataset", *, aliases: list[str] | None = None,
    missing: bool = False, deleted: bool = False,
) -> tuple[str, dict[str, Any]]:  # fmt: skip
    return f"{artifact}:v{number}", {
        "kind": "version",
        "artifact": artifact,
        "number": number,
        "type": kind,
        "digest": None if missing else f"{number:x}".rjust(64, "a"),
        "created_at": None if missing else f"2026-11-26T13:5{number}:00.000000Z",
        "aliases": aliases or [],
        "missing": missing,
        "deleted": deleted,
    }


def run(
    node: str, name: str | None, job_type: str | None, status: str, *,
    dirty: bool | None = False,
) -> tuple[str, dict[str, Any]]:  # fmt: skip
    run_id = node.removeprefix("run:")
    return node, {
        "kind": "run",
        "run_id": run_id,
        "name": name,
        "job_type": job_type,
        "status": status,
        "started_at": "2026-11-26T13:51:10.123456Z",
        "ended_at": None if status == "running" else "2026-11-26T14:00:00.000000Z",
        "git_commit": None if dirty is None else "0123456789abcdef0123456789abcdef01234567",
        "git_dirty": dirty,
    }


NODES = [
    version("raw", 0, aliases=["latest"]),
    run(PREPARE, "prepare", "preprocess", "finished"),
    version("dataset", 0, aliases=[HOSTILE, "latest"]),
    version("dataset", 1, deleted=True),
    run(TRAIN, HOSTILE, HOSTILE_2, "finished", dirty=True),
    version("model", 0, "model"),
    version("model", 1, "model", aliases=["production", HOSTILE_2]),
    run(EVALUATE, None, None, "failed", dirty=None),
    version("features", 3, missing=True),
    run(SERVE, "serve", "deploy", "running"),
]
EDGES = [
    ("raw:v0", PREPARE, "used"),
    (PREPARE, "dataset:v0", "produced"),
    (PREPARE, "dataset:v1", "produced"),
    ("dataset:v0", TRAIN, "used"),
    (TRAIN, "model:v0", "produced"),
    (TRAIN, "model:v1", "produced"),
    ("model:v1", EVALUATE, "used"),
    ("features:v3", EVALUATE, "used"),
    ("model:v1", SERVE, "used"),
]
# What a reader sees on each node, line by line (DOT and Mermaid agree).
LABELS = {
    "raw:v0": "raw:v0\nlatest",
    PREPARE: "prepare\npreprocess · finished",
    "dataset:v0": f"dataset:v0\n{HOSTILE}, latest",
    "dataset:v1": "dataset:v1\n(deleted)",
    TRAIN: f"{HOSTILE}\n{HOSTILE_2} · finished",
    "model:v0": "model:v0",
    "model:v1": f"model:v1\nproduction, {HOSTILE_2}",
    EVALUATE: "20261126T150000000000Z-deadbeef\nfailed",
    "features:v3": "features:v3\n(missing)",
    SERVE: "serve\ndeploy · running",
}


def lineage(*, reverse: bool = False) -> nx.DiGraph:
    """The test lineage; ``reverse`` inserts nodes, edges and attributes backwards."""

    def order(items: list[Any]) -> list[Any]:
        return items[::-1] if reverse else items

    graph = nx.DiGraph()
    for node, attrs in order(NODES):
        graph.add_node(node, **dict(order(list(attrs.items()))))
    for source, target, kind in order(EDGES):
        graph.add_edge(source, target, kind=kind)
    return graph


def graphml_value(value: Any) -> Any:
    return ",".join(value) if isinstance(value, list) else value


def assert_same_graph(loaded: nx.DiGraph, original: nx.DiGraph, *, graphml: bool) -> None:
    assert set(loaded.nodes) == set(original.nodes)
    assert set(loaded.edges) == set(original.edges)
    items = [(loaded.nodes[n], original.nodes[n]) for n in original.nodes]
    items += [(loaded.edges[e], original.edges[e]) for e in original.edges]
    for got, want in items:
        if graphml:
            want = {k: graphml_value(v) for k, v in want.items() if v is not None}
        assert got == want
        for name, value in got.items():  # GraphML keeps types: bool is not int
            assert type(value) is type(want[name])


# --- dispatch and edge cases ---------------------------------------------------------


def test_formats_dispatch_to_their_writers() -> None:
    graph = lineage()
    assert FORMATS == ("json", "graphml", "dot", "mermaid")
    assert json.loads(export_graph(graph, "json")) == to_node_link(graph)
    assert export_graph(graph, "graphml") == to_graphml(graph)
    assert export_graph(graph, "dot") == to_dot(graph)
    assert export_graph(graph, "mermaid") == to_mermaid(graph)


@pytest.mark.parametrize("fmt", ["svg", "JSON", "", "dot\n"])
def test_unknown_format_is_invalid_input(fmt: str) -> None:
    with pytest.raises(InvalidInputError, match="json, graphml, dot, mermaid") as caught:
        export_graph(lineage(), fmt)
    assert "\n" not in str(caught.value)


@pytest.mark.parametrize("fmt", FORMATS)
def test_empty_graph_exports(fmt: str) -> None:
    text = export_graph(nx.DiGraph(), fmt)
    assert text.endswith("\n")
    if fmt == "json":
        assert json.loads(text)["nodes"] == json.loads(text)["edges"] == []
    elif fmt == "graphml":
        assert len(from_graphml(text)) == 0
    elif fmt == "mermaid":
        assert text.splitlines()[0] == "flowchart LR"
        assert not [line for line in text.splitlines() if re.match(r"\s+n\d", line)]


@pytest.mark.parametrize("fmt", FORMATS)
def test_output_does_not_depend_on_insertion_order(fmt: str) -> None:
    assert export_graph(lineage(), fmt) == export_graph(lineage(reverse=True), fmt)


# --- JSON ----------------------------------------------------------------------------


def test_node_link_json_round_trips() -> None:
    graph = lineage()
    data = json.loads(export_graph(graph, "json"))
    assert [node["id"] for node in data["nodes"]] == sorted(graph.nodes)
    assert [(e["source"], e["target"]) for e in data["edges"]] == sorted(graph.edges)
    assert_same_graph(nx.node_link_graph(data, edges="edges"), graph, graphml=False)


# --- GraphML -------------------------------------------------------------------------


def test_graphml_round_trips_through_from_graphml() -> None:
    graph = lineage()
    assert_same_graph(from_graphml(to_graphml(graph)), graph, graphml=True)


def test_graphml_file_reads_with_networkx(tmp_path: Path) -> None:
    graph = lineage()
    path = tmp_path / "lineage.graphml"
    path.write_text(export_graph(graph, "graphml"), encoding="utf-8")
    assert_same_graph(nx.read_graphml(path), graph, graphml=True)


def test_graphml_keeps_carriage_returns() -> None:
    graph = nx.DiGraph()
    graph.add_node("run:x", kind="run", name="one\r\ntwo\rthree\u2028four\x85")
    assert from_graphml(to_graphml(graph)).nodes["run:x"]["name"] == (
        "one\r\ntwo\rthree\u2028four\x85"
    )


@pytest.mark.parametrize(
    "attrs", [{"name": "bell\x07"}, {"aliases": ["ok", "nul\x00"]}, {"name": "\ud800"}]
)
def test_graphml_rejects_what_xml_cannot_hold(attrs: dict[str, Any]) -> None:
    graph = nx.DiGraph()
    graph.add_node("run:x", **attrs)
    with pytest.raises(InvalidInputError, match="GraphML"):
        to_graphml(graph)


def test_graphml_rejects_values_it_cannot_type() -> None:
    graph = nx.DiGraph()
    graph.add_node("run:x", config={"lr": 0.1})
    with pytest.raises(InvalidInputError, match="'config' is a dict"):
        to_graphml(graph)


@pytest.mark.parametrize(
    "text",
    [
        "not xml",
        "<graphml><graph",
        '<graphml xmlns="http://graphml.graphdrawing.org/xmlns">'
        '<graph edgedefault="undirected"><node id="a"/></graph></graphml>',
    ],
)
def test_from_graphml_rejects_other_text(text: str) -> None:
    with pytest.raises(InvalidInputError, match="not a GraphML lineage graph"):
        from_graphml(text)


# --- DOT -----------------------------------------------------------------------------


@pytest.fixture
def dot(graphviz_dot: str) -> str:
    return graphviz_dot


def render_svg(dot: str, source: str) -> ET.Element:
    done = subprocess.run(
        [dot, "-Tsvg"], input=source.encode(), capture_output=True, timeout=60, check=False
    )
    assert (done.returncode, done.stderr) == (0, b"")
    return ET.fromstring(done.stdout)


SVG = "{http://www.w3.org/2000/svg}"


def svg_nodes(svg: ET.Element) -> dict[str, str]:
    """Node title -> its label text, lines joined with newlines."""
    return {
        "".join(group.find(f"{SVG}title").itertext()): "\n".join(  # type: ignore[union-attr]
            "".join(text.itertext()) for text in group.iter(f"{SVG}text")
        )
        for group in svg.iter(f"{SVG}g")
        if group.get("class") == "node"
    }


def test_dot_renders_every_label(dot: str) -> None:
    assert svg_nodes(render_svg(dot, to_dot(lineage()))) == LABELS


def test_dot_renders_empty_graph(dot: str) -> None:
    assert svg_nodes(render_svg(dot, to_dot(nx.DiGraph()))) == {}


def test_dot_escapes_hostile_node_ids(dot: str) -> None:
    graph = nx.DiGraph()
    ids = ['x"y', "ends\\", 'q\\"', "multi\nline", "<b>&amp;", "a -> b", "}"]
    for source, target in itertools.pairwise(ids):
        graph.add_edge(source, target, kind="used")
    svg = render_svg(dot, to_dot(graph))
    assert len(svg_nodes(svg)) == len(ids)
    edges = [group for group in svg.iter(f"{SVG}g") if group.get("class") == "edge"]
    assert len(edges) == len(ids) - 1


def test_dot_styles_by_status_and_state() -> None:
    lines = {line.split(" [")[0].strip(): line for line in to_dot(lineage()).splitlines()}
    assert to_dot(lineage()).startswith("digraph lineage {\n  rankdir=LR;\n")
    assert "#cc0000" in lines[f'"{EVALUATE}"']
    assert "#ee8800" in lines[f'"{SERVE}"']
    assert "#cc0000" not in lines[f'"{TRAIN}"']
    assert "dashed" in lines['"features:v3"']
    assert "dashed" in lines['"dataset:v1"']
    assert 'style="rounded"' in lines['"model:v0"']
    assert 'label="produced"' in lines[f'"{TRAIN}" -> "model:v0"']


# --- Mermaid -------------------------------------------------------------------------

NODE_LINE = re.compile(r'    (n\d+)(?:\(\["([^"]*)"\]\)|\("([^"]*)"\))(?::::(\w+))?')
EDGE_LINE = re.compile(r"    (n\d+) -->\|(used|produced)\| (n\d+)")


def decode_mermaid(label: str) -> str:
    return re.sub(r"#(\d+);", lambda m: chr(int(m.group(1))), label.replace("<br>", "\n"))


def test_mermaid_structure_and_labels() -> None:
    graph = lineage()
    lines = to_mermaid(graph).splitlines()
    assert lines[0] == "flowchart LR"
    nodes = [m for line in lines if (m := NODE_LINE.fullmatch(line))]
    edges = [m for line in lines if (m := EDGE_LINE.fullmatch(line))]
    assert len(nodes) == graph.number_of_nodes()
    assert len(edges) == graph.number_of_edges()
    ids = [m.group(1) for m in nodes]
    assert ids == [f"n{i}" for i in range(len(ids))]  # unique, in sorted node order
    by_id = dict(zip(ids, sorted(graph.nodes), strict=True))
    labels = {by_id[m.group(1)]: m.group(2) or m.group(3) for m in nodes}
    for label in labels.values():
        # Only line breaks and entity codes carry markup; no special character is raw.
        plain = re.sub(r"#\d+;", "", label.replace("<br>", ""))
        assert not re.search(r'["\n\[\](){}|;%`#<>&]', plain), label
    assert {node: decode_mermaid(label) for node, label in labels.items()} == LABELS
    assert {(by_id[m.group(1)], by_id[m.group(3)], m.group(2)) for m in edges} == {
        (source, target, kind) for source, target, kind in EDGES
    }
    classes = {by_id[m.group(1)]: m.group(4) for m in nodes if m.group(4)}
    assert classes == {
        EVALUATE: "failed",
        SERVE: "running",
        "features:v3": "unavailable",
        "dataset:v1": "unavailable",
    }
    assert {line.split()[1] for line in lines if line.lstrip().startswith("classDef")} == {
        "failed",
        "running",
        "unavailable",
    }
    # Runs are stadiums, versions rounded boxes.
    assert {by_id[m.group(1)] for m in nodes if m.group(2) is not None} == {
        PREPARE,
        TRAIN,
        EVALUATE,
        SERVE,
    }
