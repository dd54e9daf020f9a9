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

A tool that changes a file in place (SAS ``backscale`` writing BACKSCAL into
a spectrum, ``rgsproc`` correcting an event list for aspect drift) does not
replace the record of the task that made the file: it appends an entry to the
file's modification list, ``.<output name>.xcube-mods.json``, with the
file's checksum before and after. The maker stays up to date as long as the
chain of modifications leads from the checksum it recorded to the file's
current one (:func:`modified_consistently`).
"""
from __future__ import annotations

import json
from pathlib import Path

__all__ = ["record_path", "write_record", "read_record", "records", "provenance", "draw_provenance", "mods_path",
           "read_mods", "append_mod", "clear_mods", "modified_consistently"]

RECORD_SUFFIX = ".xcube.json"
MODS_SUFFIX = ".xcube-mods.json"
RECORD_VERSION = 1


def record_path(output) -> Path:
    """Path of the provenance record of an output file: ``.<name>.xcube.json``
    in the same directory. Eager (a path only)."""
    p = Path(output)
    return p.with_name(f".{p.name}{RECORD_SUFFIX}")


def write_record(output, record: dict) -> Path:
    """Write ``record`` as the provenance record of ``output`` atomically
    (temporary file in the same directory, then ``os.replace``). Returns its
    path. Eager: writes and fsyncs the file."""
    from ..io.atomic import write_json

    data = dict(record, xcube_record=RECORD_VERSION)
    return write_json(record_path(output), data, fsync=True, indent=1, sort_keys=True)


def read_record(path) -> dict | None:
    """A provenance record, or None when absent or unreadable (a half-written
    record cannot exist: records are renamed into place). Eager: reads the
    file."""
    try:
        with open(path) as fh:
            rec = json.load(fh)
    except (OSError, ValueError):
        return None
    return rec if isinstance(rec, dict) and "xcube_record" in rec else None


def mods_path(output) -> Path:
    """Path of the in-place modification list of a file:
    ``.<name>.xcube-mods.json``. Eager (a path only)."""
    p = Path(output)
    return p.with_name(f".{p.name}{MODS_SUFFIX}")


def read_mods(output) -> list[dict]:
    """The in-place modifications recorded for ``output`` (oldest first; [] if
    none). Eager: reads the file."""
    try:
        with open(mods_path(output)) as fh:
            data = json.load(fh)
    except (OSError, ValueError):
        return []
    mods = data.get("modifications") if isinstance(data, dict) else None
    return [m for m in mods if isinstance(m, dict)] if isinstance(mods, list) else []


def append_mod(output, entry: dict) -> Path:
    """Append one modification entry (with ``before``/``after`` checksums) to
    the list of ``output``, atomically. Returns the list's path. Eager: reads
    the list and writes it again (fsync)."""
    from ..io.atomic import write_json

    mods = read_mods(output) + [entry]
    data = {"xcube_record": RECORD_VERSION, "file": str(Path(output).resolve()), "modifications": mods}
    return write_json(mods_path(output), data, fsync=True, indent=1, sort_keys=True)


def clear_mods(output) -> None:
    """Forget the modifications of ``output`` (it was just made afresh).
    Eager."""
    mods_path(output).unlink(missing_ok=True)


def modified_consistently(output, made: str, current: str, since: int = 0) -> bool:
    """True when the modifications of ``output`` recorded from index ``since``
    on lead, checksum by checksum, from ``made`` to ``current`` (and there is
    at least one). Reads the small modification list eagerly."""
    mods = read_mods(output)[since:]
    if not mods:
        return False
    expected = made
    for m in mods:
        if m.get("before") != expected:
            return False
        expected = m.get("after")
    return expected == current


def records(out_dir) -> list[dict]:
    """All provenance records under ``out_dir`` (recursive), each with its own
    path under key ``"record"``, sorted by start time. Eager: walks the
    directory tree and reads every record (unreadable ones skipped)."""
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
    ``task``. Every node has ``label`` (the file name). A file changed in
    place also gets edges from the other inputs of each modifying task and
    ``modified_by`` (list of tools).
    """
    import networkx as nx

    g = nx.DiGraph()
    for rec in records(out_dir):
        _add_record(g, rec)
    for path in Path(out_dir).rglob(f".*{MODS_SUFFIX}"):
        target = str(path.with_name(path.name[1:-len(MODS_SUFFIX)]).resolve())
        for m in read_mods(target):
            _add_modification(g, target, m)
    return g


def _add_record(g, rec: dict) -> None:
    outs = list(rec.get("outputs", {}))
    for o in outs:
        g.add_node(o, kind="product", label=Path(o).name, tool=rec.get("tool"), task=rec.get("task"),
                   params=rec.get("params", {}), args=rec.get("args", []), versions=rec.get("versions", {}),
                   started=rec.get("started"), duration=rec.get("duration"), log=rec.get("log"),
                   tags=rec.get("tags", {}), record=rec["record"])
    for i in rec.get("inputs", {}):
        if i not in g:
            g.add_node(i, kind="input", label=Path(i).name)
        for o in outs:
            if i != o:
                g.add_edge(i, o, tool=rec.get("tool"), task=rec.get("task"))


def _add_modification(g, target: str, m: dict) -> None:
    if target not in g:
        g.add_node(target, kind="input", label=Path(target).name)
    g.nodes[target].setdefault("modified_by", []).append(m.get("tool"))
    for i in m.get("inputs", {}):
        if i == target:
            continue
        if i not in g:
            g.add_node(i, kind="input", label=Path(i).name)
        g.add_edge(i, target, tool=m.get("tool"), task=m.get("task"))


_COLORS = {"input": "#c9b3e6", "product": "#a7d3a6"}


def draw_provenance(graph_or_dir, path=None, *, figsize=None, dpi: int = 110):
    """Draw a product graph (or the graph of a directory) left to right by
    processing stage, nodes labelled with file names, edges with tools.

    Saves a PNG to ``path`` when given (returns the path), else returns the
    matplotlib ``Figure``.
    Eager: reads the records of a directory and draws the whole graph.
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
