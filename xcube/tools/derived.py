"""Steps done by xcube itself inside a tool chain (net light curves, power
spectra, aligned GTIs), with the same provenance and skip-if-done rules as
mission-tool tasks: a step whose outputs exist with the same parameters and
the same input checksums is not redone, and every product gets a provenance
record (tool ``xcube.<step>``) so :func:`xcube.tools.provenance` links it to
its inputs."""
from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Callable

from .._version import __version__
from .provenance import read_record, record_path, write_record
from .runner import fingerprint

__all__ = ["Step", "run_step", "run_steps"]

log = logging.getLogger("xcube.tools")


@dataclass
class Step:
    """One xcube step: ``func()`` writes ``outputs`` (atomically) from ``inputs``."""

    name: str
    tool: str
    func: Callable[[], object]
    inputs: list
    outputs: list
    params: dict = field(default_factory=dict)
    tags: dict = field(default_factory=dict)


def _up_to_date(step: Step) -> bool:
    out = Path(step.outputs[0])
    rec = read_record(record_path(out))
    if not rec or rec.get("params") != step.params:
        return False
    if rec.get("inputs") != {str(Path(i).resolve()): fingerprint(i) for i in step.inputs}:
        return False
    return all(Path(o).exists() and rec.get("outputs", {}).get(str(Path(o).resolve())) == fingerprint(o)
               for o in step.outputs)


def run_step(step: Step, *, overwrite: bool = False) -> dict:
    """Run one step unless up to date; returns a status row (the columns of
    :data:`xcube.tools.batch.STATUS_COLUMNS`; state ``done``, ``skipped`` or
    ``failed``). Errors are recorded, not raised. Eager: runs the step here
    (blocks until it is done) and writes its provenance record; ``wall_time``
    in [s]."""
    t0 = time.monotonic()
    row = {"task": step.name, "obsid": str(step.tags.get("obsid", "")) or None, "tool": step.tool, "state": "done",
           "wall_time": 0.0, "returncode": None, "error_class": None, "message": None, "log": None,
           "outputs": [str(o) for o in step.outputs], "param_hash": "", "xcube_version": __version__,
           "tags": dict(step.tags)}
    if not overwrite and _up_to_date(step):
        row["state"] = "skipped"
        return row
    started = datetime.now(timezone.utc).isoformat(timespec="seconds")
    try:
        step.func()
    except (OSError, ValueError, KeyError, TypeError) as exc:
        log.warning("%s failed: %s", step.name, exc)
        row.update(state="failed", error_class=type(exc).__name__, message=str(exc))
        row["wall_time"] = time.monotonic() - t0
        return row
    write_record(step.outputs[0], {
        "task": step.name, "tool": step.tool, "package": None, "params": step.params, "args": [],
        "inputs": {str(Path(i).resolve()): fingerprint(i) for i in step.inputs},
        "outputs": {str(Path(o).resolve()): fingerprint(o) for o in step.outputs},
        "versions": {"xcube": __version__}, "param_hash": "", "tags": dict(step.tags), "started": started,
        "duration": time.monotonic() - t0})
    row["wall_time"] = time.monotonic() - t0
    return row


def run_steps(steps: list, *, client=None, workers: int | None = None, overwrite: bool = False):
    """Run independent steps concurrently (Dask threads, or ``client``);
    returns a status table (``pandas.DataFrame``) in the order given. Eager:
    blocks until every step has finished or failed."""
    import dask
    import pandas as pd

    from .batch import STATUS_COLUMNS

    if not steps:
        return pd.DataFrame(columns=STATUS_COLUMNS)
    if client is not None:
        rows = client.gather([client.submit(run_step, s, overwrite=overwrite, pure=False) for s in steps])
    else:
        tasks = [dask.delayed(run_step, pure=False)(s, overwrite=overwrite) for s in steps]
        rows = dask.compute(*tasks, scheduler="threads", num_workers=workers)
    return pd.DataFrame(list(rows), columns=STATUS_COLUMNS)


def net_lightcurve_file(raw, background, out, *, index_root=None, **index_params) -> Path:
    """Net light curve file ``out`` = light curve ``raw`` minus the model
    background light curve ``background`` (both OGIP files, e.g. ``lelcgen``
    and ``lebkgmap lc`` products), resampled onto ``raw``'s bins
    (:func:`xcube.products.net_lightcurve`); written with ``kind="net"``
    (RATE = net rate, BACKV/BACKE = background). Recorded in the product
    index of ``index_root`` when given (``index_params`` add to the row)."""
    from ..io.lightcurve_file import read_lightcurve
    from ..io.ogip import write_lightcurve
    from ..products.naming import add_to_index
    from ..products.net import net_lightcurve

    lc = net_lightcurve(read_lightcurve(raw), str(background))
    Path(out).parent.mkdir(parents=True, exist_ok=True)
    path = write_lightcurve(out, lc, kind="net", overwrite=True)
    if index_root is not None:
        add_to_index(index_root, path, lc.attrs, kind="lcnet", time_bin=lc.attrs.get("time_bin"),
                     source_lc=str(raw), background_lc=str(background), **index_params)
    return path


def power_spectrum_file(raw, background, out, *, norm: str, segment: float, rebin=None, index_root=None,
                        **index_params) -> Path:
    """Power-spectrum file ``out`` of the light curve ``raw``.

    ``norm="leahy"``: Leahy normalisation, Poisson level 2 kept. ``norm="rms"``
    (fractional rms^2 per Hz): normalised to the *source* rate (mean rate
    minus the mean of the ``background`` light curve over the same bins) and
    Poisson level subtracted. The total light curve is used, not the net one:
    Poisson noise is a property of all counted photons. Recorded in the
    product index of ``index_root`` when given (``index_params`` add to the row)."""
    import numpy as np

    from ..io.lightcurve_file import read_lightcurve
    from ..io.powspec import write_power_spectrum
    from ..products.naming import add_to_index
    from ..products.net import model_on_lightcurve
    from ..products.powerspectrum import power_spectrum

    lc = read_lightcurve(raw)
    if norm == "rms":
        rate, _ = model_on_lightcurve(read_lightcurve(background), lc)
        exp = np.asarray(lc["exposure"].values)
        good = (exp > 0) & np.isfinite(rate)
        bkg = float(np.average(rate[good], weights=exp[good])) if good.any() else 0.0
        pds = power_spectrum(lc, segment, norm="frac", rebin=rebin, background_rate=bkg, subtract_noise=True)
    elif norm == "leahy":
        pds = power_spectrum(lc, segment, norm="leahy", rebin=rebin)
    else:
        raise ValueError(f"norm={norm!r}: the chain makes 'leahy' and 'rms' power spectra")
    Path(out).parent.mkdir(parents=True, exist_ok=True)
    path = write_power_spectrum(out, pds, overwrite=True)
    if index_root is not None:
        add_to_index(index_root, path, pds.attrs, kind="pds", time_bin=pds.attrs.get("dt"), chain_norm=norm,
                     source_lc=str(raw), **index_params)
    return path
