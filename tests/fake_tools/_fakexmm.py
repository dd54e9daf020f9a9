"""Fake SAS tasks beyond the EPIC chain: the three first stages of rgsproc,
emosaic, and the spectral tasks backscale, rmfgen, arfgen and specgroup.

Loaded by ``_fakelib`` (which registers them in ``IMPL``); they use its FITS
helpers. What they write follows the SAS documentation's description of each
product:

- rgsproc ``1:events``: ``P<obs><R1|R2><exp>merged0000.FIT`` (EVENTS with
  TIME, BETA, XDSP, PI, CCDNR, FLAG; one STDGTInn per CCD), the source list
  ``...SRCLI_0000.FIT`` (SRCLIST) and, if absent, the attitude file;
  ``2:angles`` adds the aspect-drift corrected BETA_CORR/XDSP_CORR columns to
  the merged list in place (needs the source list); ``3:filter`` writes the
  filtered list ``...EVENLI0000.FIT`` (needs stage 2 done).
- emosaic: additive mosaic of images on the same grid (WCS of the first).
- backscale: writes BACKSCAL (region area in sky pixels^2 from the DSS
  keywords evselect wrote) into the spectrum, in place.
- rmfgen: MATRIX (fixed-width rows, N_GRP=1) + EBOUNDS on the spectrum's
  channel grid (SPECDELT PI per channel, PI in eV).
- arfgen: SPECRESP on the RMF's energy grid (``withrmfset=yes``).
- specgroup: a copy of the spectrum with GROUPING/QUALITY (``mincounts``)
  and BACKFILE/RESPFILE/ANCRFILE set (``addfilenames=yes``).
"""
from __future__ import annotations

import re
from pathlib import Path

import _fakelib as fl
import _minifits as mf
import numpy as np

RGS_CCDS = 9
RGS_STAGES = ("1:events", "2:angles", "3:filter", "4:spectra", "5:fluxing")


def _rgs_exposure(p):
    if not fl._yes(p.get("withinstexpids")) or not p.get("instexpids"):
        raise fl.ToolFailure(fl._err("rgsproc", "NoExposure", "give withinstexpids=yes instexpids=R1S004 ..."))
    ids = p["instexpids"].split()
    if len(ids) != 1 or not re.fullmatch(r"R[12][SU]\d{3}", ids[0]):
        raise fl.ToolFailure(fl._err("rgsproc", "BadExposure", f"instexpids={p['instexpids']!r}: one RnSnnn id"))
    return ids[0][:2], ids[0][2:]


def _stages(p):
    lo, hi = p.get("entrystage", "1:events"), p.get("finalstage", "5:fluxing")
    if lo not in RGS_STAGES or hi not in RGS_STAGES:
        raise fl.ToolFailure(fl._err("rgsproc", "BadStage", f"stages must be one of {RGS_STAGES}"))
    return range(RGS_STAGES.index(lo) + 1, RGS_STAGES.index(hi) + 2)


def _rgs_names(obs_id, inst, exp):
    stem = f"P{obs_id}{inst}{exp}"
    return {"merged": f"{stem}merged0000.FIT", "srcli": f"{stem}SRCLI_0000.FIT", "evenli": f"{stem}EVENLI0000.FIT",
            "attgti": f"{stem}attgti0000.FIT"}


def _rgs_events(inst, exp, prim):
    rng = np.random.default_rng(fl._seed(inst, exp, prim["OBS_ID"]))
    t0, t1 = float(prim["TSTART"]), float(prim["TSTOP"])
    n = int(4000 * (t1 - t0) / 8000.0)
    t = np.sort(rng.uniform(t0, t1, n))
    cols = {"TIME": t, "BETA": rng.normal(0.0, 0.01, n), "XDSP": rng.normal(0.0, 2e-4, n),
            "PI": rng.integers(300, 2500, n).astype(np.int16),
            "CCDNR": rng.integers(1, RGS_CCDS + 1, n).astype(np.uint8),
            "FLAG": rng.choice(np.array([0, 0, 0, 0, 0, 0, 0, 8], np.int32), n)}
    hdr = {"TELESCOP": "XMM", "INSTRUME": fl.XMM_INST[inst][0], "OBS_ID": prim["OBS_ID"], "EXPIDSTR": exp,
           "DATAMODE": "SPECTROSCOPY", "SUBMODE": prim["SUBMODE"], "OBJECT": prim["OBJECT"], "MJDREF": fl.MJDREF_XMM,
           "TIMESYS": "TT", "TIMEREF": "LOCAL", "TIMEUNIT": "s", "TSTART": t0, "TSTOP": t1, "RA_PNT": prim["RA_PNT"],
           "DEC_PNT": prim["DEC_PNT"], "PA_PNT": prim["PA_PNT"], "DATE-OBS": prim["DATE-OBS"],
           "CREATOR": "fake-rgsproc"}
    gtis = [(f"STDGTI{c:02d}", {"CCDID": c}, np.array([t0 + 2.0 * c]), np.array([t1 - 1.0 * c]))
            for c in range(1, RGS_CCDS + 1)]
    return cols, hdr, gtis


def _write_rgs(path, cols, hdr, gtis):
    hdus = [fl.table_hdu(cols, "EVENTS", hdr)]
    hdus += [fl.gti_hdu(s, e, name, {"CCDID": hh["CCDID"]}) for name, hh, s, e in gtis]
    return fl.write(path, hdus, {k: hdr[k] for k in ("TELESCOP", "INSTRUME", "OBS_ID", "OBJECT", "EXPIDSTR")})


def _rgs_stage1(obs_id, inst, exp, prim, names):
    cols, hdr, gtis = _rgs_events(inst, exp, prim)
    _write_rgs(names["merged"], cols, hdr, gtis)
    src = fl.table_hdu({"INDEX": np.array([1], np.int16), "LABEL": np.array(["PROPOSAL"]),
                        "RA": np.array([prim["RA_PNT"]]), "DEC": np.array([prim["DEC_PNT"]])}, "SRCLIST",
                       {"INSTRUME": hdr["INSTRUME"]})
    fl.write(names["srcli"], [src], {"TELESCOP": "XMM", "INSTRUME": hdr["INSTRUME"], "OBS_ID": obs_id})
    g = fl._union(*[(s, e) for _, _, s, e in gtis])
    fl.write(names["attgti"], [fl.gti_hdu(*g, "STDGTI")], {"TELESCOP": "XMM", "OBS_ID": obs_id})
    if not Path(f"P{obs_id}OBX000ATTTSR0000.FIT").exists():
        fl._attitude(obs_id, prim)


def _rgs_stage2(names):
    for key in ("merged", "srcli"):
        if not Path(names[key]).exists():
            raise fl.ToolFailure(fl._err("rgsproc", "NoInput", f"{names[key]} missing; run stage 1:events first"))
    cols, hdr, prim, gtis, _ = fl.read_events(names["merged"] + ":EVENTS")
    cols["BETA_CORR"] = cols["BETA"] - 1e-4
    cols["XDSP_CORR"] = cols["XDSP"] + 1e-6
    hdr["ASPCORR"] = True
    _write_rgs(names["merged"], cols, hdr, gtis)


def _rgs_stage3(names):
    cols, hdr, prim, gtis, _ = fl.read_events(names["merged"] + ":EVENTS")
    if "BETA_CORR" not in cols:
        raise fl.ToolFailure(fl._err("rgsproc", "NoAngles", "no BETA_CORR column; run stage 2:angles first"))
    att = fl.read_gti(names["attgti"])
    gtis = [(nm, hh, *fl._intersect((s, e), att)) for nm, hh, s, e in gtis]
    keep = cols["FLAG"] == 0
    keep &= fl._in_gti(cols["TIME"], *fl._union(*[(s, e) for _, _, s, e in gtis]))
    _write_rgs(names["evenli"], {k: v[keep] for k, v in cols.items()}, dict(hdr, CREATOR="fake-rgsfilter"), gtis)


def fake_rgsproc(p, a):
    fl._need_ccf("rgsproc")
    odf, summ = fl._odf_from_env()
    if summ is None:
        raise fl.ToolFailure(fl._err("rgsproc", "NoSummary", "SAS_ODF must point to the *SUM.SAS made by odfingest"))
    inst, exp = _rgs_exposure(p)
    ime = fl._ime_files(odf)
    if (inst, exp) not in ime:
        raise fl.ToolFailure(fl._err("rgsproc", "NoExposure", f"no {inst} exposure {exp} in {odf}"))
    prim = mf.getheader(ime[(inst, exp)])
    names = _rgs_names(prim["OBS_ID"], inst, exp)
    for stage in _stages(p):
        if stage == 1:
            _rgs_stage1(prim["OBS_ID"], inst, exp, prim, names)
        elif stage == 2:
            _rgs_stage2(names)
        elif stage == 3:
            _rgs_stage3(names)
        else:
            raise fl.ToolFailure(fl._err("rgsproc", "NotFaked", "the fake rgsproc stops at stage 3:filter"))
    return []


# --------------------------------------------------------------------------
# images


_GRID_KEYS = ("CTYPE1", "CRVAL1", "CRPIX1", "CDELT1", "CTYPE2", "CRVAL2", "CRPIX2", "CDELT2")


def fake_emosaic(p, a):
    paths = p["imagesets"].split()
    if not paths:
        raise fl.ToolFailure(fl._err("emosaic", "NoImages", "imagesets is empty"))
    first = mf.read(paths[0])[0]
    total = np.zeros(first.image.shape, np.float64)
    for path in paths:
        h = mf.read(path)[0]
        if h.image.shape != first.image.shape or any(
                abs(float(h.header[k]) - float(first.header[k])) > 1e-9 if isinstance(first.header[k], float)
                else h.header[k] != first.header[k] for k in _GRID_KEYS):
            raise fl.ToolFailure(fl._err("emosaic", "Grid", f"{path} is not on the grid of {paths[0]} (the fake "
                                                            "mosaics images of one grid only)"))
        total += h.image
    hdr = {k: v for k, v in first.header.items() if k not in ("INSTRUME", "EXPIDSTR")}
    hdr.update(INSTRUME="EPIC", NMOSAIC=len(paths))
    img = total.astype(first.image.dtype) if first.image.dtype.kind == "i" else total
    return [mf.write(p["mosaicedset"], [mf.HDU(header=hdr, image=img)])]


# --------------------------------------------------------------------------
# spectra and responses


def _read_spectrum(path):
    h = mf.read(path)
    spec = h["SPECTRUM"]
    return h, spec


def _dss_area(header) -> float:
    area = 0.0
    for k, v in header.items():
        if not (k.startswith("DSVAL") and str(header.get("DSTYP" + k[5:], "")).startswith("POS")):
            continue
        m = re.fullmatch(r"(circle|annulus)\(([^)]*)\)", str(v).strip().lower())
        pars = [float(x) for x in m.group(2).split(",")]
        area += np.pi * (pars[2] ** 2 if m.group(1) == "circle" else pars[3] ** 2 - pars[2] ** 2)
    return area


def fake_backscale(p, a):
    fl._need_ccf("backscale")  # the detector geometry (chip gaps) comes from the calibration
    h, spec = _read_spectrum(p["spectrumset"])
    fl.read_events(fl._events_table_arg(p["badpixlocation"]))  # must be a readable event list
    area = _dss_area(spec.header) or np.pi * (15 * 60 / 0.05) ** 2  # no region: the whole field of view
    mf.update_header(p["spectrumset"], 1, {"BACKSCAL": float(area)})
    print(f"backscale: BACKSCAL = {area:.6g} (sky pixels^2)")
    return [p["spectrumset"]]


def _channel_grid(spec):
    chan = np.asarray(spec.columns["CHANNEL"])
    bs = int(spec.header.get("SPECDELT", 1))
    return chan, bs


def fake_rmfgen(p, a):
    fl._need_ccf("rmfgen")
    _, spec = _read_spectrum(p["spectrumset"])
    chan, bs = _channel_grid(spec)
    if fl._yes(p.get("withenergybins")):
        e = np.linspace(float(p.get("energymin", 0.1)), float(p.get("energymax", 12.0)),
                        int(p.get("nenergybins", 1000)) + 1)
    else:
        e = np.linspace(0.05, 15.0, 1501)
    elo, ehi = e[:-1], e[1:]
    width = 32
    centre = 0.5 * (elo + ehi) / (0.001 * bs)  # channel of each energy
    first = np.clip(np.round(centre).astype(np.int64) - width // 2, chan[0], chan[-1] - width + 1)
    k = first[:, None] + np.arange(width)[None, :]
    sigma = np.maximum(0.5, 0.05 * np.sqrt(0.5 * (elo + ehi)) / (0.001 * bs))[:, None]
    m = np.exp(-0.5 * ((k - centre[:, None]) / sigma) ** 2)
    m = (m / m.sum(axis=1, keepdims=True) * 0.9).astype(np.float32)
    hdr = {"HDUCLASS": "OGIP", "HDUCLAS1": "RESPONSE", "HDUCLAS2": "RSP_MATRIX", "HDUVERS": "1.3.0",
           "CHANTYPE": "PI", "DETCHANS": len(chan), "TELESCOP": "XMM",
           "INSTRUME": spec.header.get("INSTRUME", ""), "LO_THRES": 1e-6,
           "_colkeys": {"F_CHAN": {"TLMIN": int(chan[0])}}}
    matrix = fl.table_hdu({"ENERG_LO": elo.astype(np.float32), "ENERG_HI": ehi.astype(np.float32),
                           "N_GRP": np.ones(len(elo), np.int16), "F_CHAN": first.astype(np.int32),
                           "N_CHAN": np.full(len(elo), width, np.int32), "MATRIX": m}, "MATRIX", hdr)
    ebounds = fl.table_hdu({"CHANNEL": chan.astype(np.int32), "E_MIN": (chan * bs * 0.001).astype(np.float32),
                            "E_MAX": ((chan + 1) * bs * 0.001).astype(np.float32)}, "EBOUNDS",
                           {"HDUCLASS": "OGIP", "HDUCLAS1": "RESPONSE", "HDUCLAS2": "EBOUNDS", "HDUVERS": "1.2.0",
                            "CHANTYPE": "PI", "DETCHANS": len(chan)})
    return [fl.write(p["rmfset"], [matrix, ebounds], {"TELESCOP": "XMM", "INSTRUME": hdr["INSTRUME"]})]


def fake_arfgen(p, a):
    fl._need_ccf("arfgen")
    _, spec = _read_spectrum(p["spectrumset"])
    if "badpixlocation" in p:
        fl.read_events(fl._events_table_arg(p["badpixlocation"]))
    if fl._yes(p.get("withrmfset")):
        if not p.get("rmfset") or not Path(p["rmfset"]).exists():
            raise fl.ToolFailure(fl._err("arfgen", "NoRMF", f"withrmfset=yes but rmfset={p.get('rmfset')!r} missing"))
        mat = mf.read(p["rmfset"])["MATRIX"]
        elo, ehi = np.asarray(mat.columns["ENERG_LO"]), np.asarray(mat.columns["ENERG_HI"])
    else:
        e = np.linspace(0.05, 15.0, 1501)
        elo, ehi = e[:-1], e[1:]
    ec = 0.5 * (elo + ehi)
    peak = 1200.0 if spec.header.get("INSTRUME") == "EPN" else 450.0
    area = peak * np.exp(-0.5 * (np.log(ec / 1.5) / 0.9) ** 2)
    if p.get("detmaptype", "psf") == "psf":
        area *= 0.85  # the encircled-energy fraction of a point source in the region
    hdr = {"HDUCLASS": "OGIP", "HDUCLAS1": "RESPONSE", "HDUCLAS2": "SPECRESP", "HDUVERS": "1.1.0",
           "TELESCOP": "XMM", "INSTRUME": spec.header.get("INSTRUME", "")}
    arf = fl.table_hdu({"ENERG_LO": elo.astype(np.float32), "ENERG_HI": ehi.astype(np.float32),
                        "SPECRESP": area.astype(np.float32)}, "SPECRESP", hdr)
    return [fl.write(p["arfset"], [arf], {"TELESCOP": "XMM", "INSTRUME": hdr["INSTRUME"]})]


def fake_specgroup(p, a):
    h, spec = _read_spectrum(p["spectrumset"])
    cols = dict(spec.columns)
    counts = np.asarray(cols["COUNTS"])
    grouping = np.ones(len(counts), np.int16)
    quality = np.zeros(len(counts), np.int16)
    if p.get("mincounts"):
        need, acc = int(p["mincounts"]), 0
        for i, c in enumerate(counts):
            grouping[i] = 1 if acc == 0 else -1
            acc += int(c)
            if acc >= need:
                acc = 0
        if acc:
            quality[grouping.size - 1] = 2
    cols.update(GROUPING=grouping, QUALITY=quality)
    hdr = {k: v for k, v in spec.header.items() if not re.fullmatch(r"(T(TYPE|FORM)\d+|TFIELDS|NAXIS\d?)", k)}
    hdr["_colkeys"] = mf.column_keys(spec)
    if fl._yes(p.get("addfilenames"), True):
        for key, par in (("BACKFILE", "backgndset"), ("RESPFILE", "rmfset"), ("ANCRFILE", "arfset")):
            if p.get(par):
                if not Path(p[par]).exists():
                    raise fl.ToolFailure(fl._err("specgroup", "NoFile", f"{par}={p[par]} does not exist"))
                hdr[key] = p[par]
    hdus = [fl.table_hdu(cols, "SPECTRUM", hdr)] + [x for x in h[2:]]
    return [mf.write(p["groupedset"], [h[0]] + hdus)]


IMPL = {"rgsproc": fake_rgsproc, "emosaic": fake_emosaic, "backscale": fake_backscale, "rmfgen": fake_rmfgen,
        "arfgen": fake_arfgen, "specgroup": fake_specgroup}
