"""XMM-Newton RGS: ``rgsproc`` run stage by stage, one task per sub-exposure.

``rgsproc`` is a pipeline of five stages (``1:events``, ``2:angles``,
``3:filter``, ``4:spectra``, ``5:fluxing``; rgsproc documentation, "Algorithm",
https://xmm-tools.cosmos.esa.int/external/sas/current/doc/rgsproc/node30.html)
selected with ``entrystage``/``finalstage``. As DAXA does, the first three
run as separate tasks for each RGS sub-exposure (``withinstexpids=yes
instexpids=R1S004``), so each can fail, be retried and be skipped when done
on its own:

1. ``1:events`` - calibrated, CCD-combined event list
   ``P<obsid><R1|R2><exp>merged0000.FIT`` and the source list
   ``...SRCLI_0000.FIT`` (and the attitude file if absent);
2. ``2:angles`` - aspect-drift correction of the dispersion angles, written
   into the merged event list (in place: recorded as a modification of it,
   see :mod:`xcube.tools.provenance`);
3. ``3:filter`` - the filtered event list ``...EVENLI0000.FIT`` (attitude and
   housekeeping GTIs applied), what spectra of a chosen source start from.

The three stages share one working directory per sub-exposure, because each
stage finds the previous stage's files there by name. The sub-exposures are
not merged (SAS offers no merge of RGS event lists; spectra are combined
later, if at all).
"""
from __future__ import annotations

from pathlib import Path

from .runner import Task
from .sas import Exposure, OdfSummary, instrument_key

__all__ = ["RGS_STAGES", "rgs_file_names", "rgsproc", "rgs_chain"]

#: the three stages run here, by step name -> rgsproc stage value
RGS_STAGES = {"events": "1:events", "angles": "2:angles", "filter": "3:filter"}


def rgs_file_names(obs_id: str, exposure: Exposure, out_dir) -> dict:
    """Files rgsproc writes for one sub-exposure in ``out_dir``: ``merged``
    (stage 1, corrected by stage 2), ``srcli`` (source list), ``evenli``
    (filtered event list, stage 3). Eager (paths only)."""
    out = Path(out_dir).resolve()
    stem = f"P{obs_id}{exposure.code}{exposure.exp_id}"
    return {"merged": out / f"{stem}merged0000.FIT", "srcli": out / f"{stem}SRCLI_0000.FIT",
            "evenli": out / f"{stem}EVENLI0000.FIT"}


def _check_rgs(exposure: Exposure) -> None:
    if instrument_key(exposure.instrument) not in ("rgs1", "rgs2"):
        raise ValueError(f"rgsproc processes RGS exposures, got {exposure.instrument} {exposure.exp_id}")


def rgsproc(summary: OdfSummary, ccf, exposure: Exposure, out_dir, stage: str, *, deps=(), **params) -> Task:
    """One ``rgsproc`` stage (``"events"``, ``"angles"`` or ``"filter"``) for
    one RGS sub-exposure, in ``out_dir``. Extra ``params`` (e.g. ``withsrc``,
    ``srcra``, ``srcdec`` to correct the angles for a chosen source) are
    passed as given. The ``"angles"`` stage changes the merged event list in
    place. Only builds the :class:`Task` (nothing runs until it is run);
    ``exposure`` is the ODF summary's :class:`Exposure` entry, not a
    duration in s. Lazy."""
    _check_rgs(exposure)
    if stage not in RGS_STAGES:
        raise ValueError(f"rgsproc stage {stage!r}: use one of {list(RGS_STAGES)}")
    out = Path(out_dir).resolve()
    files = rgs_file_names(summary.obs_id, exposure, out)
    # entrystage, finalstage, withinstexpids, instexpids: rgsproc parameters
    # https://xmm-tools.cosmos.esa.int/external/sas/current/doc/rgsproc/node12.html
    p = {"entrystage": RGS_STAGES[stage], "finalstage": RGS_STAGES[stage], "withinstexpids": True,
         "instexpids": f"{exposure.code}{exposure.exp_id}", **params}
    env = {"SAS_ODF": str(Path(summary.path).resolve()), "SAS_CCF": str(Path(ccf).resolve())}
    if stage == "events":
        inputs, outputs = [summary.path, ccf], [files["merged"], files["srcli"]]
    elif stage == "angles":  # modifies the merged list in place
        inputs, outputs = [files["merged"], files["srcli"], ccf], [files["merged"]]
    else:
        inputs, outputs = [files["merged"], files["srcli"], ccf], [files["evenli"]]
    tags = {"obsid": summary.obs_id, "instrument": exposure.instrument, "exposure": exposure.exp_id,
            "step": f"rgsproc-{stage}"}
    return Task("rgsproc", p, inputs=inputs, outputs=outputs, env=env, workdir=out, deps=deps,
                name=f"rgsproc-{stage}-{summary.obs_id}-{exposure.code}{exposure.exp_id}", tags=tags)


def rgs_chain(summary: OdfSummary, ccf, exposure: Exposure, out_dir, *, deps=(), angles_params=None) -> list[Task]:
    """The three stage tasks of one RGS sub-exposure, each depending on the
    one before; the last one's output is the filtered event list. Lazy: builds
    the tasks only; nothing runs here."""
    events = rgsproc(summary, ccf, exposure, out_dir, "events", deps=deps)
    angles = rgsproc(summary, ccf, exposure, out_dir, "angles", deps=(events.name,), **(angles_params or {}))
    filt = rgsproc(summary, ccf, exposure, out_dir, "filter", deps=(angles.name,))
    return [events, angles, filt]
