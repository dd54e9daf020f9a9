"""Provenance records of tool products and the product graph.

Every successful :func:`xcube.tools.run` writes a small JSON record next to
its first output, ``.<output name>.xcube.json`` (hidden, written atomically:
temporary file then rename). It holds the tool, its parameters and positional
arguments, the command line, the input and output checksums, the software
versions, the start time and duration and the log file. The record is what
makes a re-run skip a finished task, so an output directory "knows its
state": re-running the same pipeline resumes where it stopped.

:func:`provenance` collects all records under a directory into a
``networkx.DiGraph`` of files (edges input -> product, labelled with the tool);
:func:`draw_provenance` draws that graph to a PNG.
"""
from __future__ import annotations

import json
from pathlib import Path

__all__ = ["record_path", "write_record", "read_record", "records", "provenance", "draw_provenance"]

RECORD_SUFFIX = ".xcube.json"
RECORD_VERSION = 1


def record_path(output) -> Path:
    """Path of the provenance record of an output file: ``.<name>.xcube.json``
    in the same directory."""
    p = Path(output)
    return p.with_name(f".{p.name}{RECORD_SUFFIX}")


def write_record(output, record: dict) -> Path:
    """Write ``record`` as the provenance record of ``output`` atomically
    (temporary file in the same directory, then ``os.replace``). Returns its path."""
    from ..io.atomic import write_json

    data = dict(record, xcube_record=RECORD_VERSION)
    return write_json(record_path(output), data, fsync=True, indent=1, sort_keys=True)


def read_record(path) -> dict | None:
    """A provenance record, or None when absent or unreadable (a half-written
    record cannot exist: records are renamed into place)."""
    try:
        with open(path) as fh:
            rec = json.load(fh)
    except (OSError, ValueError):
        return None
    return rec if isinstance(rec, dict) and "xcube_record" in rec else None


def records(out_dir) -> list[dict]:
    """All provenance records under ``out_dir`` (recursive), each with its own
    path under key ``"record"``, sorted by start time."""
    out = []
    for p in Path(out_dir).rglob(f".*{RECORD_SUFFIX}"):
        rec = read_record(p)
        if rec is not None:
            rec["record"] = str(p)
            out.append(rec)
    out.sort(key=lambda r: (r.get("started", ""), r.get("task", "")))
    return out


def provenance(out_dir):
    """Product graph of an output directory (eager: reads the JSON records).

    Returns a ``networkx.DiGraph`` whose nodes are absolute file paths and
    whose edges point from each input to each product of a task. Product
    nodes carry ``kind="product"``, ``tool``, ``task``, ``params``, ``args``,
    ``versions``, ``started``, ``duration`` and ``log``; nodes that no
    recorded task made carry ``kind="input"``. Edges carry ``tool`` and
    ``task``. Every node has ``label`` (the file name).
    """
    import networkx as nx

    g = nx.DiGraph()
    for rec in records(out_dir):
        outs = list(rec.get("outputs", {}))
        for o in outs:
            g.add_node(o, kind="product", label=Path(o).name, tool=rec.get("tool"), task=rec.get("task"),
                       params=rec.get("params", {}), args=rec.get("args", []),
                       versions=rec.get("versions", {}), started=rec.get("started"),
                       duration=rec.get("duration"), log=rec.get("log"), tags=rec.get("tags", {}),
                       record=rec["record"])
        for i in rec.get("inputs", {}):
            if i not in g:
                g.add_node(i, kind="input", label=Path(i).name)
            for o in outs:
                g.add_edge(i, o, tool=rec.get("tool"), task=rec.get("task"))
    return g


_COLORS = {"input": "#c9b3e6", "product": "#a7d3a6"}


def draw_provenance(graph_or_dir, path=None, *, figsize=None, dpi: int = 110):
    """Draw a product graph (or the graph of a directory) left to right by
    processing stage, nodes labelled with file names, edges with tools.

    Saves a PNG to ``path`` when given (returns the path), else returns the
    matplotlib ``Figure``.
    """
    import networkx as nx
    from matplotlib.figure import Figure

    g = graph_or_dir if isinstance(graph_or_dir, nx.DiGraph) else provenance(graph_or_dir)
    if g.number_of_nodes() == 0:
        raise ValueError("empty provenance graph: no xcube tool records found; run some tasks first")
    if not nx.is_directed_acyclic_graph(g):
        raise ValueError("provenance graph has a cycle (a task reads its own output); cannot lay it out")
    for layer, nodes in enumerate(nx.topological_generations(g)):
        for n in nodes:
            g.nodes[n]["layer"] = layer
    pos = nx.multipartite_layout(g, subset_key="layer")
    nlayers = 1 + max(d["layer"] for _, d in g.nodes(data=True))
    height = max(len(list(ns)) for ns in nx.topological_generations(g))
    fig = Figure(figsize=figsize or (max(6.0, 3.2 * nlayers), max(3.0, 0.7 * height + 1)))
    ax = fig.subplots()
    colors = [_COLORS.get(d.get("kind"), "#dddddd") for _, d in g.nodes(data=True)]
    nx.draw_networkx_edges(g, pos, ax=ax, arrows=True, arrowsize=10, edge_color="#888888",
                           node_size=900)
    nx.draw_networkx_nodes(g, pos, ax=ax, node_color=colors, node_size=900, edgecolors="#444444")
    nx.draw_networkx_labels(g, pos, ax=ax, labels={n: d.get("label", n) for n, d in g.nodes(data=True)},
                            font_size=7)
    nx.draw_networkx_edge_labels(g, pos, ax=ax, edge_labels={(u, v): d.get("tool", "")
                                                             for u, v, d in g.edges(data=True)},
                                 font_size=6, rotate=False)
    ax.set_axis_off()
    ax.set_title("xcube tool provenance: inputs (purple) -> products (green)", fontsize=9)
    fig.tight_layout()
    if path is None:
        return fig
    from ..io.atomic import atomic_file

    with atomic_file(path, overwrite=True) as tmp:
        fig.savefig(tmp, dpi=dpi, format=Path(path).suffix.lstrip(".") or "png")
    return Path(path)
