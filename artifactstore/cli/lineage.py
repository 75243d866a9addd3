"""Commands over lineage: lineage, impact, where-used, audit.

Vocabulary: a **ref** is a version (``name``, ``name:vN``, ``name:ALIAS``) or a
run (``run:<run id or unique prefix>``); its **node** is the graph id it
resolves to (``name:vN`` or ``run:<run id>``), resolved once so that the
graph and the tree drawn from it name the same node.

Exit codes of ``audit`` (:func:`audit_exit_code`): 5 (``IntegrityError``'s)
when a blob of the version is missing or corrupt; 1 for any other error-level
finding (a failed or crashed run, an ancestor whose record vanished), and with
``--strict`` also for warnings (a deleted or purged ancestor or run, a running
run, a dirty or unknown code state); else 0. Errors keep their own codes.

Deleted and purged versions and runs answer every command here: they keep their
place in the graph with their state (see :mod:`artifactstore.lineage.graph`).
"""

from __future__ import annotations

import argparse
import json
import math
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, Final

import artifactstore
from artifactstore.cli._common import open_existing, open_output, say
from artifactstore.core.errors import ArtifactStoreError, IntegrityError, InvalidInputError

if TYPE_CHECKING:  # imported by the commands that use them (cli/main.py, start-up)
    import networkx as nx

    from artifactstore.lineage.audit import AuditReport
    from artifactstore.lineage.walk import Lineage

#: lineage.graph.EXPORT_FORMATS, named here so that --help does not import the graph
#: (tests/test_cli_startup.py checks they are equal)
FORMATS: Final = ("json", "graphml", "dot", "mermaid")

#: flag codes about the version's own bytes (``artifactstore.lineage.audit``)
INTEGRITY_FLAGS: Final = frozenset({"missing-blob", "corrupt-blob"})


def _node(store: artifactstore.Store, ref: str) -> str:
    return store.lineage_node(ref, sync=True)


def _depth(text: str | None) -> int | None:
    if text is None:
        return None
    try:
        depth = int(text)
    except ValueError:
        depth = -1
    if depth < 0:
        raise InvalidInputError(f"--depth {text!r:.40}: use a whole number >= 0 "
                                "(generations of versions)")
    return depth


def _sample(text: str | None) -> float | None:
    if text is None:
        return None
    raw = text.strip()
    try:
        value = float(raw.removesuffix("%")) / (100 if raw.endswith("%") else 1)
    except ValueError:
        value = math.nan
    if not 0 < value <= 1:  # NaN fails too
        raise InvalidInputError(f"--sample {text!r:.40}: use a fraction in (0, 1] such as 0.1, "
                                "or a percentage such as 10%")
    return value


def _format(args: argparse.Namespace, default: str) -> str:
    """--format, else json with --json, else ``default``; --json owns stdout without -o."""
    fmt: str = args.format or ("json" if args.json else default)
    if args.json and fmt != "json" and args.output is None:
        raise InvalidInputError(f"--json prints JSON: drop --format {fmt}, "
                                "or write it to a file with --output")
    return fmt


def _label(node: str, attrs: Mapping[str, Any]) -> str:
    state = attrs.get("state", "live")
    gone = "" if state == "live" else f" {state.upper()}"
    if attrs.get("kind") == "run":
        parts = (node, attrs.get("name"), attrs.get("job_type"), f"[{attrs.get('status')}]")
        return " ".join(str(part) for part in parts if part) + gone
    aliases = ",".join(attrs.get("aliases") or [])
    return f"{node} ({attrs.get('type') or '?'}) {aliases}".rstrip() + gone


def tree(graph: nx.DiGraph | Lineage, start: str, *, upstream: bool) -> str:
    """An indented tree from ``start``; a node reached again is named, not repeated."""
    arrow = "<- " if upstream else "-> "
    lines: list[str] = []
    shown: set[str] = set()
    stack = [(start, 0)]
    while stack:  # a loop, not recursion: lineage chains can be deep
        node, level = stack.pop()
        indent = "  " * level + (arrow if level else "")
        if node in shown:
            lines.append(f"{indent}{node} (see above)")
            continue
        shown.add(node)
        lines.append(indent + _label(node, graph.nodes[node]))
        following = graph.predecessors(node) if upstream else graph.successors(node)
        stack += [(other, level + 1) for other in sorted(following, reverse=True)]
    return "\n".join(lines) + "\n"


def _html_alone(args: argparse.Namespace) -> None:
    if args.format is not None or args.output is not None:
        raise InvalidInputError("--html FILE writes the page on its own: drop --format "
                                "and --output")


def _write_html(path: str, text: str) -> None:
    with open_output(path) as out:
        out.write(text)


def lineage(args: argparse.Namespace) -> int | dict[str, Any]:
    if args.html is not None:
        return _lineage_html(args)
    if args.ref is None:
        if _format(args, "text") == "text":
            raise InvalidInputError("name a REF to draw its tree, or export the whole "
                                    "project's graph with --format json|graphml|dot|mermaid "
                                    "or --html FILE")
        if args.depth is not None or args.downstream:
            raise InvalidInputError("--depth and --downstream need a REF to start from")
    from artifactstore.lineage.queries import neighbours
    from artifactstore.lineage.walk import Lineage

    fmt, depth = _format(args, "text"), _depth(args.depth)
    with open_existing(args) as store:
        if args.ref is None:
            node, graph = None, store.lineage(sync=True)
        else:
            node = _node(store, args.ref)
            # _node has just synced: one sync per command (a warm one is one request);
            # walked in the catalog, without networkx unless exported (issue 20)
            graph = neighbours(store.context, node, depth, upstream=not args.downstream,
                               sync=False)
    if fmt == "text":
        assert node is not None
        text = tree(graph, node, upstream=not args.downstream)
    else:
        text = (graph.to_json() if fmt == "json" and isinstance(graph, Lineage)
                else _export(graph if not isinstance(graph, Lineage)
                             else graph.to_networkx(), fmt))
    with open_output(args.output) as out:
        out.write(text)
    if args.output is None:
        return 0
    direction = "downstream" if args.downstream else "upstream"
    what = f"the {direction} lineage of {node}" if node else "the project's lineage"
    say(args, f"wrote {what} ({graph.number_of_nodes()} nodes) as {fmt} to {args.output}")
    return {"ref": node, "direction": direction, "format": fmt, "output": args.output,
            "nodes": graph.number_of_nodes(), "edges": graph.number_of_edges()}


def _lineage_html(args: argparse.Namespace) -> dict[str, Any]:
    from artifactstore.ui.reports import lineage_page

    _html_alone(args)
    depth = _depth(args.depth)
    if args.ref is None and (depth is not None or args.downstream):
        raise InvalidInputError("--depth and --downstream need a REF to start from")
    with open_existing(args) as store:
        page = lineage_page(store, args.ref, downstream=args.downstream, depth=depth)
    _write_html(args.html, page.html)
    direction = "downstream" if args.downstream else "upstream"
    say(args, f"wrote a page of {page.nodes} nodes and {page.edges} edges to {args.html}; "
              "open it in a browser")
    return {"ref": page.focus, "direction": direction, "format": "html", "output": args.html,
            "nodes": page.nodes, "edges": page.edges}


def impact(args: argparse.Namespace) -> dict[str, Any]:
    from artifactstore.lineage.graph import describe_state

    with open_existing(args) as store:
        node = _node(store, args.ref)
        derived = store.impact(node, sync=True)
        graph = store.downstream(node, sync=False)  # holds node and derived, with states
    states = {n: _state(graph.nodes[n]) for n in (node, *derived)}
    said = describe_state(node, graph.nodes[node])
    if said:
        say(args, said)
    for other in derived:
        gone = states[other]["state"]
        say(args, other + ("" if gone == "live" else f" ({gone})"))
    if not derived:
        say(args, f"nothing is derived from {node}")
    return {"ref": node, "state": states[node], "derived": derived,
            "derived_states": {n: states[n]["state"] for n in derived}}


def _state(attrs: dict[str, Any]) -> dict[str, Any]:
    return {"state": attrs.get("state", "live"), "at": attrs.get("state_at"),
            "by": attrs.get("state_by"), "reason": attrs.get("state_reason")}


def where_used(args: argparse.Namespace) -> dict[str, Any]:
    with open_existing(args) as store:
        found = store.where_used(args.digest, sync=True)
    if not found.versions:
        say(args, f"no version holds a file with content {found.digest}")
    states = dict(found.states)
    for version, path in found.versions:
        gone = f" ({states[version]})" if version in states else ""
        say(args, f"{version + gone:30} {path}")
    if found.runs:
        say(args, f"used by {len(found.runs)} run(s): {', '.join(found.runs)}")
    return found.as_dict()


def audit_exit_code(report: AuditReport, *, strict: bool = False) -> int:
    """5 when the version's bytes are damaged, 1 for other findings that count, else 0."""
    if any(flag.code in INTEGRITY_FLAGS for flag in report.flags):
        return IntegrityError.exit_code
    if any(flag.severity == "error" or strict for flag in report.flags):
        return ArtifactStoreError.exit_code
    return 0


def audit(args: argparse.Namespace) -> int:
    if args.html is not None:
        _html_alone(args)
    fmt, sample = _format(args, "text"), _sample(args.sample)
    with open_existing(args) as store:
        report = store.audit(args.ref, sample=sample, sync=True)
        if args.html is not None:
            from artifactstore.ui.reports import audit_page

            page = audit_page(store, report)
    code = audit_exit_code(report, strict=args.strict)
    if args.html is not None:
        _write_html(args.html, page.html)
        output, fmt = args.html, "html"
    else:
        render = {"text": report.to_text, "markdown": report.to_markdown,
                  "json": report.to_json}
        text = render[fmt]()
        with open_output(args.output) as out:
            out.write(text if text.endswith("\n") else text + "\n")
        output = args.output
    if output is not None and args.json:
        print(json.dumps({"ref": report.ref, "ok": report.ok, "exit_code": code,
                          "flags": [f.as_dict() for f in report.flags], "format": fmt,
                          "output": output}, indent=2, sort_keys=True))
    elif output is not None:
        say(args, f"audit of {report.ref}: " + ("OK" if report.ok else
                  f"{len(report.flags)} finding(s)") + f"; report in {output}")
    return code


def register(add: Any, common: argparse.ArgumentParser) -> None:
    """Add these commands; ``add(name, handler, help)`` returns a subparser and
    ``common`` holds the global options every subcommand accepts."""
    ref_help = "NAME[:vN|:ALIAS] or run:RUN_ID (a unique prefix is enough)"
    p = add("lineage", lineage, "what a version or run comes from (or feeds, --downstream)")
    p.add_argument("ref", metavar="REF", nargs="?",
                   help=ref_help + "; leave out to export the whole project's graph "
                                   "(--format other than text, or --html)")
    way = p.add_mutually_exclusive_group()
    way.add_argument("--upstream", dest="downstream", action="store_false", default=False,
                     help="what REF was made from (the default)")
    way.add_argument("--downstream", dest="downstream", action="store_true",
                     help="what was made from REF")
    p.add_argument("--depth", metavar="N", help="at most N generations of versions")
    p.add_argument("--format", choices=("text", *FORMATS), default=None,
                   help="text (an indented tree; the default) or an export format "
                        "(--json is --format json)")
    p.add_argument("--output", "-o", metavar="FILE", help="write here instead of stdout")
    p.add_argument("--html", metavar="FILE",
                   help="write an interactive picture of the graph: one self-contained HTML "
                        "file that needs no network to open")
    p = add("impact", impact, "every version derived from REF, transitively")
    p.add_argument("ref", metavar="REF", help=ref_help)
    p = add("where-used", where_used,
            "the versions holding a file with this content, and the runs that used them")
    p.add_argument("digest", metavar="DIGEST", help="the file's BLAKE3 digest (64 hex)")
    p = add("audit", audit, "provenance, alias history and integrity of a version")
    p.epilog = ("exit status: 5 when a blob of the version is missing or corrupt; 1 for "
                "another error-level finding (a failed or crashed run, an ancestor whose "
                "record vanished) and, with --strict, for warnings too (a deleted or purged "
                "ancestor or run, a running run, a dirty or unknown code state); otherwise "
                "0; errors such as an unknown REF keep their usual codes (3 not found, 2 "
                "bad input)")
    p.add_argument("--strict", action="store_true",
                   help="exit 1 on warnings as well, a deleted or purged ancestor among "
                        "them (for release gates)")
    p.add_argument("ref", metavar="REF", help="NAME[:vN|:ALIAS]")
    p.add_argument("--sample", metavar="FRACTION|PERCENT%",
                   help="re-hash only this share of the chunks, e.g. 0.1 or 10%% "
                        "(deterministic; default: all)")
    p.add_argument("--format", choices=("text", "markdown", "json"), default=None,
                   help="report format (--json is --format json)")
    p.add_argument("--output", "-o", metavar="FILE", help="write the report here")
    p.add_argument("--html", metavar="FILE",
                   help="write the report as one self-contained HTML page with the "
                        "provenance graph (needs no network to open)")


def _export(graph: nx.DiGraph, fmt: str) -> str:
    from artifactstore.lineage.formats import export_graph  # imports networkx

    return export_graph(graph, fmt)
