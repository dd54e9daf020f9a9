"""``xcube lc``, ``xcube image``, ``xcube spectrum``, ``xcube pds``,
``xcube stitch``, ``xcube plot``: thin layers over :func:`xcube.lightcurve`,
:func:`xcube.image`, :func:`xcube.spectrum`, :func:`xcube.power_spectrum`,
:func:`xcube.stitch` and :func:`xcube.plot.plot_file` that write OGIP/FITS
files and figures (the timing commands live in :mod:`xcube.products.timing_cli`)."""
from __future__ import annotations

import argparse
import logging

import numpy as np

log = logging.getLogger("xcube.products")


def register(subparsers) -> None:
    """Add the ``lc``, ``image`` and ``spectrum`` subcommands (and the timing ones)."""
    _register_lc(subparsers)
    _register_image_spectrum(subparsers)

    from .timing_cli import register_timing

    register_timing(subparsers)


def _register_lc(subparsers) -> None:
    p = subparsers.add_parser(
        "lc", help="light curve of an event file -> OGIP RATE file",
        description="Bin events into a light curve (rate = counts / good time per bin) and write an OGIP/93-003 "
                    "light curve with a GTI extension. With --background the rates are background-subtracted "
                    "(areas scaled) unless --kind total is given. Events are screened with the mission's "
                    "standard filter unless --no-screen.",
    )
    _common(p)
    p.add_argument("--time-bin", type=float, required=True, metavar="SECONDS", help="bin width [s]")
    p.add_argument("--energy", type=float, nargs=2, metavar=("EMIN", "EMAX"), help="energy band [keV], half-open")
    p.add_argument("--region", help="source region: DS9 or CIAO string or file (physical, or a sky frame: fk5, icrs, "
                   "galactic, ecliptic...); one that starts with - as --region=-circle(...)")
    p.add_argument("--background", help="background region (same forms); needs --region")
    _backscal_option(p)
    p.add_argument("--t0", type=float, help="start of the first bin [s, mission time] (default: first GTI start)")
    p.add_argument("--time-range", type=float, nargs=2, metavar=("START", "STOP"),
                   help="keep only this time range [s, mission time]")
    p.add_argument("--offset", type=float, default=0.0, help="shift of the time grid in bins (0.5: half-bin)")
    p.add_argument("--errors", choices=("poisson", "gehrels"), default="poisson",
                   help="count errors: sqrt(N) or Gehrels 1 + sqrt(N + 0.75) (default poisson)")
    p.add_argument("--kind", choices=("total", "net", "background"),
                   help="rate written as RATE: gross source, background-subtracted, or scaled background "
                        "(default: net with --background, else total)")
    p.add_argument("--fraccorr", action=argparse.BooleanOptionalAction, default=True,
                   help="RATE corrected for the fractional exposure of each bin, COUNTS / (TIMEDEL x FRACEXP) "
                        "(as epiclccorr); --no-fraccorr writes COUNTS / TIMEDEL (as evselect; what Stingray "
                        "expects)")
    p.add_argument("--mjd", action="store_true", help="add an MJD column (MJD of each bin in the file's TIMESYS)")
    p.set_defaults(func=_run_lc)


def _backscal_option(p) -> None:
    p.add_argument("--backscal", choices=("geometric", "detector"), default="geometric",
                   help="BACKSCAL of the regions: their whole areas (default), or the parts on the detector as "
                        "SAS backscale clips them, from the events' CCD footprint (not for event files already "
                        "cut by a region)")


def _register_image_spectrum(subparsers) -> None:
    from ..cli import positive_float

    p = subparsers.add_parser("image", help="sky image of an event file -> FITS image with WCS",
                              description="Bin events into a (y, x) counts image on the sky-pixel grid and write it "
                                          "as a FITS image carrying its WCS (RA/Dec) and the event file's sky X/Y "
                                          "as DS9 physical coordinates. By default the image covers the extent "
                                          "of the selected events; events are screened unless --no-screen.")
    _common(p)
    size = p.add_mutually_exclusive_group()
    size.add_argument("--size-arcsec", type=positive_float,
                      help="image pixel size [arcsec] (default: the mission's usual pixel, XMM EPIC and eROSITA 4\", "
                           "else one sky pixel)")
    size.add_argument("--bin-size", type=positive_float, help="image pixel size [sky pixels of the event file]")
    p.add_argument("--energy", type=float, nargs=2, metavar=("EMIN", "EMAX"), help="energy band [keV], half-open")
    p.add_argument("--region", help="keep events in this region; the image covers its bounding box")
    p.add_argument("--x-range", type=float, nargs=2, metavar=("LO", "HI"),
                   help="x range [sky pixels] (default: the events' extent, or the --region's bounding box)")
    p.add_argument("--y-range", type=float, nargs=2, metavar=("LO", "HI"),
                   help="y range [sky pixels] (default: the events' extent, or the --region's bounding box)")
    p.set_defaults(func=_run_image)

    p = subparsers.add_parser("spectrum", help="PI spectrum of a region -> OGIP PHA file",
                              description="Histogram the PI channels of the events in a region and write an OGIP PHA "
                                          "type I spectrum on the mission's standard channel grid (it pairs with "
                                          "the standard response matrices); with --background also the "
                                          "background spectrum (BACKFILE), with --group-min grppha-like "
                                          "grouping. Events are screened unless --no-screen.")
    _common(p)
    p.add_argument("--region", help="source region: DS9 string or file (default: all events)")
    p.add_argument("--background", help="background region; its PHA goes to --background-out")
    p.add_argument("--background-out", help="background PHA path (default <out stem>_bkg<suffix>)")
    _backscal_option(p)
    p.add_argument("--group-min", type=int, metavar="N", help="group channels to at least N counts")
    p.add_argument("--channel-bin", type=int,
                   help="PI channels per output channel (default: the mission's standard grid, the one its "
                        "responses use: XMM pn 5, MOS 15, others 1)")
    p.add_argument("--pi-range", type=int, nargs=2, metavar=("LO", "HI"),
                   help="PI channel range, inclusive, LO <= HI, overlapping the mission's PI range (pn 0-20479, "
                        "MOS 0-15000) (default: the standard grid's, pn 0-20479, MOS 0-11999, else the mission's "
                        "PI range)")
    p.add_argument("--respfile", help="RESPFILE keyword (response matrix file name)")
    p.add_argument("--ancrfile", help="ANCRFILE keyword (ancillary response file name)")
    p.set_defaults(func=_run_spectrum)


def _common(p: argparse.ArgumentParser) -> None:
    from ..cli import add_hdu_option, add_screen_option

    p.add_argument("file", metavar="FILE", help="event file (FITS, .FTZ, .gz) or xcube Zarr store")
    p.add_argument("--out", "-o", required=True,
                   help="output file, or a directory (existing, or ending in /) for the scheme's file name")
    p.add_argument("--overwrite", action="store_true", help="replace an existing output file")
    p.add_argument("--instrument", help="mission profile name, overriding detection (e.g. xmm-pn)")
    add_hdu_option(p)
    p.add_argument("--expr", help="event filter, evselect or CIAO syntax, e.g. 'PATTERN <= 12 && FLAG == 0' or "
                                  "'energy=0.5:2'")
    add_screen_option(p)


def _open(args, one_camera: str | None = None):
    """The events of ``args.file``; with ``one_camera`` (the command's name),
    a ValueError naming the file when it opened as several cameras (a
    directory)."""
    import xarray as xr

    from ..io import open_events

    ev = open_events(args.file, instrument=args.instrument, hdu=args.hdu)
    if one_camera and isinstance(ev, xr.DataTree):
        files = [str(n.ds.attrs.get("source", n.path)) for n in ev.subtree if "event" in n.dims]
        raise ValueError(f"{args.file}: holds {len(files)} cameras' event files; xcube {one_camera} makes a product "
                         f"of one camera: give one of {', '.join(files)}")
    return ev


def _out(args, product, kind: str, time_bin=None):
    """``--out`` as a file; a directory gets the product's scheme name."""
    from .naming import output_file, product_name

    a = product.attrs
    return output_file(args.out, lambda: product_name(a.get("obs_id"), a.get("instrument"), kind,
                                                      energy_band=getattr(args, "energy", None), time_bin=time_bin))


def _run_lc(args) -> int:
    from ..io.ogip import write_lightcurve
    from .lightcurve import lightcurve

    ev = _open(args)
    lc = lightcurve(
        ev, args.time_bin, energy_band=args.energy, region=args.region, background=args.background,
        t0=args.t0, time_range=args.time_range, expr=args.expr, screening=args.screen, offset=args.offset,
        errors=args.errors, mjd=args.mjd, backscal=args.backscal,
    ).compute()
    kind = args.kind or ("net" if args.background else "total")
    out = _out(args, lc, {"net": "lcnet", "background": "lcbkg"}.get(kind, "lc"), time_bin=args.time_bin)
    path = write_lightcurve(out, lc, kind=kind, overwrite=args.overwrite, fraccorr=args.fraccorr)
    counts = f"{int(lc['counts'].sum())} {'source counts' if args.region else 'counts'}"
    if "bkg_counts" in lc:
        counts += f", {int(lc['bkg_counts'].sum())} background-region counts"
    where = " (in the source region)" if args.region else ""
    print(f"{path}: {lc.sizes['time']} bins of {args.time_bin:g} s, {counts}, mean {kind} rate "
          f"{mean_rate(lc, {'net': 'net_rate', 'background': 'bkg_rate'}.get(kind, 'rate')):.4g} count/s{where} "
          f"over {float(lc['exposure'].sum()):.1f} s")
    return 0


def mean_rate(lc, name: str = "rate") -> float:
    """Counts over exposure of ``lc[name]`` [count/s]: sum(rate x exposure) /
    sum(exposure) over the bins with good time and a finite rate (the counts,
    net of the background for a net rate, over the good time; the
    exposure-weighted mean ``xcube info`` shows). NaN without such bins."""
    expo = np.asarray(lc["exposure"].values, np.float64)
    rate = np.asarray(lc[name].values, np.float64)
    good = (expo > 0) & np.isfinite(rate)
    return float(np.sum(rate[good] * expo[good]) / np.sum(expo[good])) if good.any() else float("nan")


def _run_image(args) -> int:
    from ..io.ogip import write_image
    from .image import image

    ev = _open(args, "image")
    img = image(ev, args.bin_size, size_arcsec=args.size_arcsec, energy_band=args.energy, region=args.region,
                expr=args.expr, screening=args.screen, x_range=args.x_range, y_range=args.y_range)
    path = write_image(_out(args, img, "image"), img, overwrite=args.overwrite)
    print(f"{path}: {img.sizes['x']} x {img.sizes['y']} (x by y, NAXIS1 x NAXIS2) image of "
          f"{img.attrs['bin_size']:g} sky pixels per pixel, "
          f"{int(img.sum())} counts")
    return 0


def _run_spectrum(args) -> int:
    from ..io.ogip import write_spectrum
    from .spectrum import spectrum

    ev = _open(args, "spectrum")
    spec = spectrum(ev, region=args.region, background=args.background, expr=args.expr, screening=args.screen,
                    channel_bin=args.channel_bin,
                    pi_range=args.pi_range, group_min=args.group_min, backscal=args.backscal).compute()
    path = write_spectrum(_out(args, spec, "spectrum"), spec, background_path=args.background_out,
                          respfile=args.respfile, ancrfile=args.ancrfile, overwrite=args.overwrite)
    extra = f", {int(spec['bkg_counts'].sum())} background counts" if "bkg_counts" in spec else ""
    print(f"{path}: {spec.sizes['channel']} channels, {int(spec['counts'].sum())} counts{extra}, "
          f"exposure {spec.attrs['exposure']:.1f} s")
    return 0
