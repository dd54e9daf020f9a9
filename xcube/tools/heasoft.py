"""HEASoft wrappers: any task by name, plus helpers for common reductions.

:func:`task` builds a :class:`~xcube.tools.runner.Task` for any HEASoft
tool with keyword parameters named as in its help file
(https://heasarc.gsfc.nasa.gov/lheasoft/ftools/headas/<task>.html); every run
gets its own PFILES directory and ``HEADASNOQUERY``/``HEADASPROMPT`` so tasks
run in parallel without prompting or clobbering each other's parameter files.

Helpers: RXTE (``pcaprepobsid`` -> ``maketime`` -> ``pcaextlc2``, and
:func:`rxte_lightcurves` to re-extract a channel-range light curve for many
observations in parallel), ``nicerl2``, ``xrtpipeline``, ``nupipeline``,
``barycorr``, ``ftselect``, ``ftmerge``.
"""
from __future__ import annotations

from pathlib import Path
from typing import Sequence

from .runner import Glob, Task, TaskResult, run

__all__ = [
    "task",
    "run_task",
    "pcaprepobsid",
    "maketime",
    "pcaextlc2",
    "rxte_lightcurve_tasks",
    "rxte_lightcurves",
    "nicerl2",
    "xrtpipeline",
    "nupipeline",
    "barycorr",
    "ftselect",
    "ftmerge",
]


def task(tool: str, params: dict | None = None, *, inputs: Sequence = (), outputs: Sequence = (),
         text_outputs: Sequence = (), args: Sequence = (), workdir=None, timeout: float | None = None,
         name: str | None = None, deps: Sequence[str] = (), tags: dict | None = None, env: dict | None = None,
         **kwparams) -> Task:
    """A HEASoft task by name with keyword parameters (``clobber=True`` is
    passed as ``clobber=yes``). Declare the files it reads and makes with
    ``inputs`` / ``outputs`` (FITS) / ``text_outputs``. Tool parameters whose
    names clash with these keywords (e.g. maketime's ``name``) go in
    ``params``. Lazy: builds the :class:`Task` only; the tool runs when the
    task is run."""
    params = {**(params or {}), **kwparams}
    return Task(tool, params, args=args, inputs=inputs, outputs=outputs, text_outputs=text_outputs,
                env=env or {}, name=name, deps=deps, workdir=workdir, timeout=timeout, tags=tags or {})


def run_task(tool: str, *, overwrite: bool = False, **kwargs) -> TaskResult:
    """Build :func:`task` and run it now (eager); returns the TaskResult."""
    return run(task(tool, **kwargs), overwrite=overwrite)


# ---------------------------------------------------------------------------
# RXTE PCA


def pcaprepobsid(indir, outdir, *, name=None, deps=(), **params) -> Task:
    """``pcaprepobsid indir outdir``: filter file ``FP_*.xfl``, dead-time
    corrected Standard2 and background lists ``FP_dtstd2.lis``/``FP_dtbkg2.lis``
    (https://heasarc.gsfc.nasa.gov/lheasoft/ftools/fhelp/pcaprepobsid.html).
    Lazy: builds the :class:`Task` only; the tool runs when the task is run."""
    out = Path(outdir).resolve()
    obsid = Path(indir).name
    return task("pcaprepobsid", indir=Path(indir).resolve(), outdir=out, inputs=[indir],
                outputs=[Glob(out / "FP_*.xfl")], text_outputs=[out / "FP_dtstd2.lis", out / "FP_dtbkg2.lis"],
                workdir=out, name=name or f"pcaprepobsid-{obsid}", deps=deps,
                tags={"obsid": obsid, "step": "pcaprepobsid"}, **params)


RXTE_GTI_EXPR = "(ELV > 4) && (OFFSET < 0.1)"


def maketime(infile, outfile, expr: str = RXTE_GTI_EXPR, *, name=None, deps=(), tags=None, **params) -> Task:
    """``maketime``: GTI file from a filter file and a boolean expression;
    ``name=NAME value=VALUE time=TIME compact=no`` as for RXTE filter files
    (https://heasarc.gsfc.nasa.gov/lheasoft/ftools/fhelp/maketime.html). Lazy:
    builds the :class:`Task` only; the tool runs when the task is run."""
    out = Path(outfile).resolve()
    p = {"infile": infile if isinstance(infile, Glob) else Path(infile).resolve(), "outfile": out, "expr": expr,
         "name": "NAME", "value": "VALUE", "time": "TIME", "compact": False, "clobber": True, **params}
    return Task("maketime", p, inputs=[infile], outputs=[out], workdir=out.parent, deps=deps,
                name=name or f"maketime-{out.stem}", tags=tags or {"step": "maketime"})


def pcaextlc2(src_infile, outfile, *, bkg_infile=None, gtiandfile=None, chmin: int = 0, chmax: int = 255,
              pculist: str = "ALL", layerlist: str = "ALL", binsz: float = 16.0, name=None, deps=(), tags=None,
              inputs=(), **params) -> Task:
    """``pcaextlc2``: Standard2 light curve of channels ``chmin``-``chmax``
    with ``binsz`` [s] bins, background subtracted when ``bkg_infile`` is given
    (lists as ``@file``;
    https://heasarc.gsfc.nasa.gov/lheasoft/ftools/fhelp/pcaextlc2.html). Lazy:
    builds the :class:`Task` only; the tool runs when the task is run."""
    out = Path(outfile).resolve()
    p = {"src_infile": src_infile, "bkg_infile": bkg_infile, "outfile": out, "gtiandfile": gtiandfile,
         "chmin": int(chmin), "chmax": int(chmax), "pculist": pculist, "layerlist": layerlist, "binsz": binsz,
         "clobber": True, **params}
    ins = [str(v)[1:] if str(v).startswith("@") else v for v in (src_infile, bkg_infile, gtiandfile) if v]
    return Task("pcaextlc2", p, inputs=ins + list(inputs), outputs=[out], workdir=out.parent, deps=deps,
                name=name or f"pcaextlc2-{out.stem}", tags=tags or {"step": "pcaextlc2"})


def rxte_lightcurve_tasks(obs_dirs: Sequence, out_dir, *, chmin: int = 5, chmax: int = 10, binsz: float = 16.0,
                          expr: str = RXTE_GTI_EXPR) -> list[Task]:
    """For each RXTE observation directory: ``pcaprepobsid`` -> ``maketime``
    -> ``pcaextlc2`` of channels ``chmin``-``chmax``, in
    ``<out_dir>/<obsid>/``; light curve ``<obsid>_ch<chmin>-<chmax>_<binsz>s.lc``.
    Independent observations run in parallel under :func:`xcube.tools.run_many`.
    ``chmin``, ``chmax``: PCA Standard2 channels; ``binsz`` [s]. Returns a
    list of length ``3 * len(obs_dirs)``: the three :class:`Task` of each
    observation in that order; nothing runs here. Lazy: builds the tasks
    only."""
    tasks = []
    for d in obs_dirs:
        obsid = Path(d).name
        od = Path(out_dir).resolve() / obsid
        prep = pcaprepobsid(d, od)
        gti = maketime(Glob(od / "FP_*.xfl"), od / f"{obsid}.gti", expr, deps=(prep.name,),
                       name=f"maketime-{obsid}", tags={"obsid": obsid, "step": "maketime"})
        lc = pcaextlc2(f"@{od / 'FP_dtstd2.lis'}", od / f"{obsid}_ch{chmin}-{chmax}_{binsz:g}s.lc",
                       bkg_infile=f"@{od / 'FP_dtbkg2.lis'}", gtiandfile=gti.outputs[0], chmin=chmin, chmax=chmax,
                       binsz=binsz, deps=(gti.name,), name=f"pcaextlc2-{obsid}-ch{chmin}-{chmax}",
                       tags={"obsid": obsid, "step": "pcaextlc2"})
        tasks += [prep, gti, lc]
    return tasks


def rxte_lightcurves(obs_dirs: Sequence, out_dir, *, chmin: int = 5, chmax: int = 10, binsz: float = 16.0,
                     expr: str = RXTE_GTI_EXPR, client=None, **run_kwargs):
    """Re-extract the ``chmin``-``chmax`` light curve of many RXTE observations
    in parallel (eager). Returns ``(status table, {obsid: light curve path})``
    for the observations that succeeded; failures are in the table."""
    from .batch import run_many

    tasks = rxte_lightcurve_tasks(obs_dirs, out_dir, chmin=chmin, chmax=chmax, binsz=binsz, expr=expr)
    table = run_many(tasks, client, log_dir=Path(out_dir) / "logs", **run_kwargs)
    ok = set(table.loc[table["state"].isin(["done", "skipped"]), "task"])
    lcs = {t.tags["obsid"]: t.outputs[0] for t in tasks if t.tool == "pcaextlc2" and t.name in ok}
    return table, lcs


# ---------------------------------------------------------------------------
# NICER, Swift-XRT, NuSTAR


def nicerl2(indir, cldir=None, *, name=None, deps=(), **params) -> Task:
    """``nicerl2``: NICER level-2 calibration and screening of an observation
    directory; the cleaned events ``<cldir>/ni<obsid>_0mpu7_cl.evt`` (``cldir``
    defaults to ``<indir>/xti/event_cl``;
    https://heasarc.gsfc.nasa.gov/lheasoft/ftools/headas/nicerl2.html). Lazy:
    builds the :class:`Task` only; the tool runs when the task is run."""
    indir = Path(indir).resolve()
    obsid = indir.name
    cl = Path(cldir).resolve() if cldir is not None else indir / "xti" / "event_cl"
    return task("nicerl2", indir=indir, cldir=cl if cldir is not None else None, clobber=True, inputs=[indir],
                outputs=[cl / f"ni{obsid}_0mpu7_cl.evt"], workdir=cl, name=name or f"nicerl2-{obsid}", deps=deps,
                tags={"obsid": obsid, "step": "nicerl2"}, **params)


# the window part of XRT cleaned event-file names, sw<obsid>x<mode><window><type>_cl.evt (window w1-w4;
# https://www.swift.ac.uk/analysis/xrt/files.php): the standard settings, PC w3 and WT w2
XRT_WINDOW = {"pc": "w3", "wt": "w2"}


def xrtpipeline(indir, outdir, *, srcra, srcdec, steminputs=None, mode: str = "pc", window: str | None = None,
                name=None, deps=(), **params) -> Task:
    """``xrtpipeline``: Swift-XRT calibration and screening; cleaned events
    ``<outdir>/<steminputs>x<mode><window>po_cl.evt`` (pointing data;
    ``steminputs`` default ``sw<obsid>``; ``mode`` ``pc`` or ``wt``; ``window``
    ``w1``-``w4``, default ``w3`` for PC and ``w2`` for WT (the usual settings;
    give it for another mode):
    ``sw00012345001xpcw3po_cl.evt``, ``sw00012345001xwtw2po_cl.evt``;
    https://heasarc.gsfc.nasa.gov/lheasoft/ftools/headas/xrtpipeline.html,
    file names: https://www.swift.ac.uk/analysis/xrt/files.php). Lazy: builds
    the :class:`Task` only; the tool runs when the task is run. ``srcra``,
    ``srcdec`` [deg]."""
    if window is None:
        if mode not in XRT_WINDOW:
            raise ValueError(f"xrtpipeline mode {mode!r}: give window= (w1-w4) for the cleaned file's name; "
                             f"the defaults are {XRT_WINDOW}")
        window = XRT_WINDOW[mode]
    if window not in ("w1", "w2", "w3", "w4"):
        raise ValueError(f"XRT window must be w1, w2, w3 or w4 (sw<obsid>x{mode}<window>po_cl.evt), got {window!r}")
    indir, out = Path(indir).resolve(), Path(outdir).resolve()
    stem = steminputs or f"sw{indir.name}"
    return task("xrtpipeline", indir=indir, outdir=out, steminputs=stem, srcra=srcra, srcdec=srcdec,
                createexpomap=True, clobber=True, inputs=[indir], outputs=[out / f"{stem}x{mode}{window}po_cl.evt"],
                workdir=out, name=name or f"xrtpipeline-{stem}", deps=deps,
                tags={"obsid": indir.name, "step": "xrtpipeline"}, **params)


def nupipeline(indir, outdir, *, steminputs=None, name=None, deps=(), **params) -> Task:
    """``nupipeline``: NuSTAR calibration and screening; cleaned events
    ``<outdir>/<steminputs>{A,B}01_cl.evt`` (``steminputs`` default
    ``nu<obsid>``;
    https://heasarc.gsfc.nasa.gov/lheasoft/ftools/headas/nupipeline.html).
    Lazy: builds the :class:`Task` only; the tool runs when the task is run."""
    indir, out = Path(indir).resolve(), Path(outdir).resolve()
    stem = steminputs or f"nu{indir.name}"
    return task("nupipeline", indir=indir, steminputs=stem, outdir=out, clobber=True, inputs=[indir],
                outputs=[out / f"{stem}A01_cl.evt", out / f"{stem}B01_cl.evt"], workdir=out,
                name=name or f"nupipeline-{stem}", deps=deps, tags={"obsid": indir.name, "step": "nupipeline"},
                **params)


# ---------------------------------------------------------------------------
# generic FITS steps


def barycorr(infile, outfile, orbitfiles, *, ra: float, dec: float, refframe: str = "ICRS",
             ephem: str = "JPLEPH.430", name=None, deps=(), **params) -> Task:
    """``barycorr``: barycentric times (TDB) for a target at ``ra``, ``dec``
    [deg] (https://heasarc.gsfc.nasa.gov/lheasoft/ftools/headas/barycorr.html).
    Lazy: builds the :class:`Task` only; the tool runs when the task is run."""
    out = Path(outfile).resolve()
    return task("barycorr", infile=Path(infile).resolve(), outfile=out, orbitfiles=Path(orbitfiles).resolve(),
                ra=ra, dec=dec, refframe=refframe, ephem=ephem, clobber=True, inputs=[infile, orbitfiles],
                outputs=[out], workdir=out.parent, name=name or f"barycorr-{out.stem}", deps=deps,
                tags={"step": "barycorr"}, **params)


def ftselect(infile, outfile, expression: str, *, extension: str = "EVENTS", name=None, deps=(), **params) -> Task:
    """``ftselect``: rows of ``infile[extension]`` matching ``expression``
    (other extensions copied;
    https://heasarc.gsfc.nasa.gov/lheasoft/ftools/headas/ftselect.html). Lazy:
    builds the :class:`Task` only; the tool runs when the task is run."""
    out = Path(outfile).resolve()
    return task("ftselect", infile=f"{Path(infile).resolve()}[{extension}]", outfile=out, expression=expression,
                copyall=True, clobber=True, inputs=[infile], outputs=[out], workdir=out.parent,
                name=name or f"ftselect-{out.stem}", deps=deps, tags={"step": "ftselect"}, **params)


def ftmerge(infiles: Sequence, outfile, *, name=None, deps=(), **params) -> Task:
    """``ftmerge``: concatenate the tables of ``infiles`` (comma list)
    (https://heasarc.gsfc.nasa.gov/lheasoft/ftools/headas/ftmerge.html). Lazy:
    builds the :class:`Task` only; the tool runs when the task is run."""
    out = Path(outfile).resolve()
    files = [Path(f).resolve() for f in infiles]
    if not files:
        raise ValueError("ftmerge needs at least one input file")
    return task("ftmerge", infile=",".join(str(f) for f in files), outfile=out, clobber=True, inputs=files,
                outputs=[out], workdir=out.parent, name=name or f"ftmerge-{out.stem}", deps=deps,
                tags={"step": "ftmerge"}, **params)
