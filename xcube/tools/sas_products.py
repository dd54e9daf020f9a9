"""XMM-Newton EPIC science products with SAS: images, exposure maps and
mosaics in energy bands; source and background spectra with their responses.

Images and exposure maps (as DAXA's ``generate_images_expmaps``, default
bands 0.5-2 and 2-10 keV): for each instrument and band, ``evselect``
makes a counts image on one fixed sky grid shared by all instruments
(:data:`IMAGE_GRID`: X and Y from 3649 to 48106 sky pixels in bins of 87,
i.e. 4.35 arcsec, 512 x 512 pixels) and ``eexpmap`` its exposure map with
the attitude file; ``emosaic`` adds the instruments' images and exposure
maps into the EPIC ones. Spectra (SAS threads "pn/MOS spectrum and response
files", https://www.cosmos.esa.int/web/xmm-newton/sas-thread-pn-spectrum):
``evselect`` source and background spectra on the instrument's standard
channel grid (from its mission profile), ``backscale`` (BACKSCAL, in place),
``rmfgen``, ``arfgen`` (with the RMF's energy grid, point-source PSF
correction) and ``specgroup`` (grouping, and BACKFILE/RESPFILE/ANCRFILE),
whose output ``xcube.read_spectrum`` opens with its background and responses.

Regions are :class:`SkyRegion`-like tuples in sky pixels (the X/Y column
values): ``("circle", x, y, r)`` or ``("annulus", x, y, r_in, r_out)``;
:func:`region_expression` gives the selectlib form evselect takes and
:func:`ds9_region` the DS9 physical form ``xcube.spectrum`` takes, so both
select exactly the same events (boundaries included).
"""
from __future__ import annotations

from pathlib import Path
from typing import Sequence

from .runner import Task
from .sas import INSTRUMENTS, eexpmap, evselect_image, evselect_spectrum, instrument_key, pi_range, sas_env

__all__ = ["IMAGE_BANDS", "IMAGE_GRID", "band_tag", "band_image", "emosaic", "image_tasks", "region_expression",
           "ds9_region", "source_regions", "backscale", "rmfgen", "arfgen", "specgroup", "spectrum_tasks"]

#: default image bands [keV] (DAXA's generate_images_expmaps)
IMAGE_BANDS = ((0.5, 2.0), (2.0, 10.0))
#: (min, max, bin) of the image grid in sky pixels, the same for X and Y and all instruments
IMAGE_GRID = (3649.0, 48106.0, 87.0)


def band_tag(band) -> str:
    """``(0.5, 2.0)`` -> ``"0.5-2keV"`` (for file names); ``band`` ``(emin,
    emax)`` in keV. Eager (string formatting)."""
    return f"{float(band[0]):g}-{float(band[1]):g}keV"


def _epic(instrument: str) -> str:
    key = instrument_key(instrument)
    if key not in INSTRUMENTS:  # the RGS spectrometers make no images; their spectra come from rgsproc
        raise ValueError(f"{instrument}: images and spectra are made for the EPIC cameras {sorted(INSTRUMENTS)}")
    return key


def _screening(instrument: str) -> str:
    from ..missions import get_profile

    return get_profile(INSTRUMENTS[_epic(instrument)][2]).screening_for() or "true"


# ---------------------------------------------------------------------------
# images and exposure maps


def band_image(eventfile, imageset, instrument: str, energy_band, *, grid=IMAGE_GRID, deps=(), name=None,
               tags=None, odf=None, ccf=None) -> Task:
    """``evselect`` counts image of ``energy_band`` [keV] on the fixed sky
    ``grid`` (min, max, bin) [sky pixels], screened as the mission profile
    says, written as 32-bit integers. The band is half-open ``[emin, emax)``
    (``(0.5, 2.0)`` -> ``PI in [500:1999]``, :func:`~xcube.tools.sas.pi_range`):
    the events ``xcube.select(energy_band=...)`` keeps, and adjacent bands
    share no event. Lazy: builds the :class:`Task` only; the tool runs when
    the task is run."""
    instrument = _epic(instrument)
    lo, hi = pi_range(instrument, energy_band)
    gmin, gmax, gbin = grid
    expr = f"({_screening(instrument)}) && (PI in [{lo}:{hi}])"
    # squarepixels, withxranges, ximagemin, ximagemax, withyranges, yimagemin, yimagemax, withimagedatatype,
    # imagedatatype: evselect parameters https://xmm-tools.cosmos.esa.int/external/sas/current/doc/evselect/
    return evselect_image(eventfile, imageset, expression=expr, bin_size=gbin, squarepixels=True,
                          withxranges=True, ximagemin=gmin, ximagemax=gmax, withyranges=True, yimagemin=gmin,
                          yimagemax=gmax, withimagedatatype=True, imagedatatype="Int32", deps=deps, name=name,
                          tags=tags, odf=odf, ccf=ccf)


def emosaic(imagesets: Sequence, mosaicedset, *, deps=(), name=None, tags=None, odf=None, ccf=None) -> Task:
    """SAS ``emosaic``: the additive mosaic of images (or of exposure maps)
    on the pixel grid and WCS of the first. Lazy: builds the :class:`Task`
    only; the tool runs when the task is run."""
    out = Path(mosaicedset).resolve()
    files = [Path(f).resolve() for f in imagesets]
    # imagesets, mosaicedset: emosaic parameters https://xmm-tools.cosmos.esa.int/external/sas/current/doc/emosaic/
    p = {"imagesets": [str(f) for f in files], "mosaicedset": str(out)}
    return Task("emosaic", p, inputs=files, outputs=[out], env=sas_env(odf, ccf), workdir=out.parent, deps=deps,
                name=name or f"emosaic-{out.stem}", tags=tags or {"step": "mosaic"})


def image_tasks(events: dict, attitude, ccf, out_dir, *, obs_id: str, bands=IMAGE_BANDS, grid=IMAGE_GRID,
                deps_of: dict | None = None, odf=None) -> tuple[list[Task], dict]:
    """Images and exposure maps of every instrument in ``events``
    (instrument -> cleaned event list) and band, and their EPIC mosaics when
    there are two instruments or more. Returns ``(tasks, products)`` with
    ``products[(instrument or "epic", band)] = {"image": path, "expmap": path}``. Every task gets
    ``SAS_CCF=ccf`` and ``SAS_ODF=odf`` (the observation's summary). Lazy:
    builds the tasks only; nothing runs here."""
    out = Path(out_dir).resolve()
    deps_of = deps_of or {}
    tasks, products = [], {}
    for band in bands:
        tag = band_tag(band)
        per_inst = []
        for inst, ev in sorted(events.items()):
            code = INSTRUMENTS[_epic(inst)][0]
            t = {"obsid": obs_id, "instrument": inst, "step": "image", "energy_band": list(band)}
            img = band_image(ev, out / f"P{obs_id}{code}_{tag}_image.fits", inst, band, grid=grid,
                             deps=deps_of.get(inst, ()), name=f"evselect-image-{obs_id}-{code}-{tag}", tags=t,
                             odf=odf, ccf=ccf)
            exp = eexpmap(img.outputs[0], attitude, ev, out / f"P{obs_id}{code}_{tag}_expmap.fits", ccf,
                          energy_band=band, instrument=inst, deps=(img.name,),
                          name=f"eexpmap-{obs_id}-{code}-{tag}", tags=dict(t, step="expmap"), odf=odf)
            tasks += [img, exp]
            per_inst.append((img, exp))
            products[(inst, tuple(band))] = {"image": img.outputs[0], "expmap": exp.outputs[0]}
        if len(per_inst) > 1:
            t = {"obsid": obs_id, "instrument": "epic", "step": "mosaic", "energy_band": list(band)}
            mi = emosaic([i.outputs[0] for i, _ in per_inst], out / f"P{obs_id}EPIC_{tag}_image.fits",
                         deps=[i.name for i, _ in per_inst], name=f"emosaic-image-{obs_id}-{tag}", tags=t,
                         odf=odf, ccf=ccf)
            me = emosaic([e.outputs[0] for _, e in per_inst], out / f"P{obs_id}EPIC_{tag}_expmap.fits",
                         deps=[e.name for _, e in per_inst], name=f"emosaic-expmap-{obs_id}-{tag}", tags=t,
                         odf=odf, ccf=ccf)
            tasks += [mi, me]
            products[("epic", tuple(band))] = {"image": mi.outputs[0], "expmap": me.outputs[0]}
    return tasks, products


# ---------------------------------------------------------------------------
# regions


def _check_region(region) -> tuple:
    shape, *pars = region
    need = {"circle": 3, "annulus": 4}.get(str(shape).lower())
    if need is None or len(pars) != need:
        raise ValueError(f"region {region!r}: use ('circle', x, y, r) or ('annulus', x, y, r_in, r_out) "
                         "in sky pixels (X/Y column values)")
    return (str(shape).lower(), *(float(v) for v in pars))


def region_expression(region) -> str:
    """selectlib filter of a region (sky pixels): ``((X,Y) IN circle(x,y,r))``.
    Eager (a string)."""
    shape, *pars = _check_region(region)
    return f"((X,Y) IN {shape}({','.join(f'{v:.10g}' for v in pars)}))"


def ds9_region(region) -> str:
    """The same region for ``xcube.spectrum``/``xcube.select``: DS9 physical
    coordinates, which are the X/Y column values. Eager (a string)."""
    shape, *pars = _check_region(region)
    return f"physical;{shape}({','.join(f'{v:.10g}' for v in pars)})"


def source_regions(events, ra: float | None = None, dec: float | None = None, *, radius_arcsec: float = 30.0,
                   background_arcsec=(60.0, 120.0)) -> tuple[tuple, tuple]:
    """Source circle and background annulus [sky pixels] around ``ra``,
    ``dec`` [deg] (default: the target, RA_OBJ/DEC_OBJ, else the pointing
    RA_PNT/DEC_PNT of the event list). ``events`` is an EventList or an
    event-file path (its header is read; no events are). Eager, cheap."""
    import xcube

    ev = xcube.open_events(events) if isinstance(events, (str, Path)) else events
    attrs = ev.attrs
    if ra is None or dec is None:
        ra = attrs.get("RA_OBJ", attrs.get("ra_obj", attrs.get("ra_pnt")))
        dec = attrs.get("DEC_OBJ", attrs.get("dec_obj", attrs.get("dec_pnt")))
    if ra is None or dec is None:
        raise ValueError(f"{attrs.get('source', events)}: no target or pointing position in the header; "
                         "pass the source position (ra, dec in deg)")
    x, y = xcube.wcs(ev).world_to_pixel_values(float(ra), float(dec))
    from ..missions import profile_of

    pix = profile_of(ev).pixel_arcsec
    r_in, r_out = background_arcsec
    return (("circle", float(x), float(y), radius_arcsec / pix),
            ("annulus", float(x), float(y), r_in / pix, r_out / pix))


# ---------------------------------------------------------------------------
# spectra and responses


def backscale(spectrumset, badpixlocation, *, deps=(), name=None, tags=None, odf=None, ccf=None) -> Task:
    """SAS ``backscale``: the BACKSCAL keyword (extraction area) written into
    ``spectrumset`` in place, from its region and the bad pixels of
    ``badpixlocation`` (the event list). ``odf``, ``ccf``: the observation's
    ``SAS_ODF`` and ``SAS_CCF`` (:func:`xcube.tools.sas.sas_env`). Only
    builds the :class:`Task` (nothing runs until it is run); its one output
    is ``spectrumset`` itself, changed in place. Lazy."""
    spec = Path(spectrumset).resolve()
    # spectrumset, badpixlocation: backscale parameters (SAS pn spectrum thread)
    p = {"spectrumset": str(spec), "badpixlocation": str(Path(badpixlocation).resolve())}
    return Task("backscale", p, inputs=[spec, badpixlocation, *([ccf] if ccf is not None else [])], outputs=[spec],
                env=sas_env(odf, ccf), workdir=spec.parent, deps=deps, name=name or f"backscale-{spec.stem}",
                tags=tags or {"step": "backscale"})


def rmfgen(spectrumset, rmfset, ccf, *, energies=(0.1, 12.0, 2400), deps=(), name=None, tags=None,
           odf=None) -> Task:
    """SAS ``rmfgen``: the redistribution matrix of a spectrum, on
    ``energies`` = (min [keV], max [keV], number of bins). Lazy: builds the
    :class:`Task` only; the tool runs when the task is run."""
    out = Path(rmfset).resolve()
    emin, emax, n = energies
    # spectrumset, rmfset, withenergybins, energymin, energymax, nenergybins: rmfgen parameters
    # https://xmm-tools.cosmos.esa.int/external/sas/current/doc/rmfgen/
    p = {"spectrumset": str(Path(spectrumset).resolve()), "rmfset": str(out), "withenergybins": True,
         "energymin": float(emin), "energymax": float(emax), "nenergybins": int(n)}
    return Task("rmfgen", p, inputs=[spectrumset, ccf], outputs=[out], workdir=out.parent,
                env=sas_env(odf, ccf), deps=deps, name=name or f"rmfgen-{out.stem}",
                tags=tags or {"step": "rmfgen"})


def arfgen(spectrumset, arfset, rmfset, badpixlocation, ccf, *, detmaptype: str = "psf", deps=(), name=None,
           tags=None, odf=None) -> Task:
    """SAS ``arfgen``: the effective area of a spectrum on the RMF's energy
    grid (``withrmfset=yes``); ``detmaptype=psf`` for a point source. Lazy:
    builds the :class:`Task` only; the tool runs when the task is run."""
    out = Path(arfset).resolve()
    # arfset, spectrumset, withrmfset, rmfset, badpixlocation, detmaptype: arfgen parameters
    # https://xmm-tools.cosmos.esa.int/external/sas/current/doc/arfgen/
    p = {"spectrumset": str(Path(spectrumset).resolve()), "arfset": str(out), "withrmfset": True,
         "rmfset": str(Path(rmfset).resolve()), "badpixlocation": str(Path(badpixlocation).resolve()),
         "detmaptype": detmaptype}
    return Task("arfgen", p, inputs=[spectrumset, rmfset, badpixlocation, ccf], outputs=[out], workdir=out.parent,
                env=sas_env(odf, ccf), deps=deps, name=name or f"arfgen-{out.stem}",
                tags=tags or {"step": "arfgen"})


def specgroup(spectrumset, groupedset, *, backgndset=None, rmfset=None, arfset=None, mincounts: int | None = 25,
              deps=(), name=None, tags=None, odf=None, ccf=None) -> Task:
    """SAS ``specgroup``: the spectrum grouped to ``mincounts`` counts per
    group (None: no grouping) with BACKFILE/RESPFILE/ANCRFILE set to the
    given files (``addfilenames=yes``). Files beside ``groupedset`` are named
    by their file name only (the tool runs in that directory), so the keywords
    stay short and the set can be moved as a whole, as XSPEC expects. Lazy:
    builds the :class:`Task` only; the tool runs when the task is run."""
    out = Path(groupedset).resolve()
    files = {"backgndset": backgndset, "rmfset": rmfset, "arfset": arfset}

    def _short(v):
        v = Path(v).resolve()
        return v.name if v.parent == out.parent else str(v)

    # spectrumset, groupedset, addfilenames, backgndset, rmfset, arfset, mincounts: specgroup parameters
    # https://xmm-tools.cosmos.esa.int/external/sas/current/doc/specgroup/
    p = {"spectrumset": str(Path(spectrumset).resolve()), "groupedset": str(out), "addfilenames": True,
         **{k: _short(v) for k, v in files.items() if v is not None},
         "mincounts": int(mincounts) if mincounts else None}
    return Task("specgroup", p, inputs=[spectrumset, *[v for v in files.values() if v is not None]], outputs=[out],
                env=sas_env(odf, ccf), workdir=out.parent, deps=deps, name=name or f"specgroup-{out.stem}",
                tags=tags or {"step": "group"})


def spectrum_tasks(eventfile, instrument: str, out_dir, ccf, *, source, background=None, stem: str,
                   obs_id: str = "", energies=(0.1, 12.0, 2400), group_min: int | None = 25,
                   deps=(), odf=None) -> tuple[list[Task], dict]:
    """Source (and background) spectrum of one cleaned event list with
    BACKSCAL, RMF, ARF and a grouped spectrum that names them. ``source``,
    ``background``: regions in sky pixels (see module doc). Returns
    ``(tasks, files)`` with ``files`` keys ``source``, ``background``, ``rmf``,
    ``arf``, ``grouped``. Every task gets ``SAS_CCF=ccf`` and ``SAS_ODF=odf``
    (the observation's summary). Lazy: builds the tasks only; nothing runs
    here."""
    inst = _epic(instrument)
    obs_env = {"odf": odf, "ccf": ccf}
    out = Path(out_dir).resolve()
    screen = _screening(inst)
    t = {"obsid": obs_id, "instrument": inst, "step": "spectrum"}
    files = {"source": out / f"{stem}_src.pha", "rmf": out / f"{stem}.rmf", "arf": out / f"{stem}.arf",
             "grouped": out / f"{stem}_grp.pha"}
    src = evselect_spectrum(eventfile, files["source"], inst, expression=f"({screen}) && {region_expression(source)}",
                            deps=deps, name=f"evselect-spec-{stem}-src", tags=t, **obs_env)
    bsrc = backscale(files["source"], eventfile, deps=(src.name,), name=f"backscale-{stem}-src",
                     tags=dict(t, step="backscale"), **obs_env)
    tasks = [src, bsrc]
    bkg_done = []
    if background is not None:
        files["background"] = out / f"{stem}_bkg.pha"
        bkg = evselect_spectrum(eventfile, files["background"], inst, deps=deps, name=f"evselect-spec-{stem}-bkg",
                                expression=f"({screen}) && {region_expression(background)}", tags=t, **obs_env)
        bbkg = backscale(files["background"], eventfile, deps=(bkg.name,), name=f"backscale-{stem}-bkg",
                         tags=dict(t, step="backscale"), **obs_env)
        tasks += [bkg, bbkg]
        bkg_done = [bbkg.name]
    rmf = rmfgen(files["source"], files["rmf"], ccf, energies=energies, deps=(bsrc.name,), name=f"rmfgen-{stem}",
                 tags=dict(t, step="rmfgen"), odf=odf)
    arf = arfgen(files["source"], files["arf"], files["rmf"], eventfile, ccf, deps=(rmf.name,),
                 name=f"arfgen-{stem}", tags=dict(t, step="arfgen"), odf=odf)
    grp = specgroup(files["source"], files["grouped"], backgndset=files.get("background"), rmfset=files["rmf"],
                    arfset=files["arf"], mincounts=group_min, deps=[arf.name, *bkg_done], name=f"specgroup-{stem}",
                    tags=dict(t, step="specgroup"), **obs_env)
    return tasks + [rmf, arf, grp], files
