"""``plot_file``: the standard figure of any xcube product file (what
``xcube plot FILE`` draws)."""
from __future__ import annotations

from pathlib import Path

import numpy as np

from ..io.product_info import product_kind  # re-exported: the kinds plot_file draws

__all__ = ["plot_file", "plot_files", "figure_paths", "product_kind"]


def _spectrum(path):
    """The figure of a PHA spectrum, or of row k of a type II file named ``"file.pha{k}"`` (read_spectrum's rule)."""
    from ..io.ogip import read_spectrum
    from .spectra import spectrum

    return spectrum(read_spectrum(path), title=Path(path).name)


def _row_of(path):
    """``(file, k)`` of ``"file.pha{k}"``, row ``k`` of a PHA type II file as
    XSPEC names it (only when no file of the full name exists:
    :func:`xcube.io.ogip.read_spectrum`'s and ``xcube info``'s rule), else
    ``(path, None)``."""
    from ..io.ogip import _split_row

    base, row = _split_row(path, None)
    return (base, row) if row is not None else (Path(path), None)


def _figure_name(path, suffix) -> str:
    """The figure name of one product: its name with the last suffix replaced
    by ``suffix``; a row ``"file.pha{k}"`` keeps its row (``file{k}.png``)."""
    base, row = _row_of(path)
    if row is not None:
        return (base.with_suffix("").name if base.suffix else base.name) + f"{{{row}}}" + suffix
    return path.with_suffix(suffix).name if path.suffix else path.name + suffix


def _image(path):
    """The primary image of a FITS file as a (y, x) DataArray with its
    celestial WCS keywords (a CD matrix as CDELT = 1 and PC = CD) and, when
    the header maps image pixels to sky pixels (LTVn/LTMn_n), the sky-pixel
    edges ``x_lo``/``x_hi``/``y_lo``/``y_hi``."""
    import xarray as xr
    from astropy.io import fits

    with fits.open(path) as hdul:
        h = hdul[0].header
        data = np.asarray(hdul[0].data, float)
    wcs = {k: h[k] for k in h if (k[:-1] in ("CTYPE", "CRVAL", "CRPIX", "CDELT", "CUNIT") and k[-1] in "12")
           or k in ("PC1_1", "PC1_2", "PC2_1", "PC2_2")}  # (the rotation of a rotated image)
    cd = {f"{i}_{j}": h.get(f"CD{i}_{j}") for i in (1, 2) for j in (1, 2)}
    if any(v is not None for v in cd.values()):  # a CD matrix: the same WCS as PC = CD, CDELT = 1
        wcs.update({f"PC{k}": float(v or 0.0) for k, v in cd.items()}, CDELT1=1.0, CDELT2=1.0)
    coords = {}
    for axis, dim, n in ((1, "x", data.shape[1]), (2, "y", data.shape[0])):
        ltv, ltm = h.get(f"LTV{axis}"), h.get(f"LTM{axis}_{axis}")
        cross = h.get(f"LTM{axis}_{3 - axis}", 0.0)
        if ltv is None or not ltm or cross:
            coords = {}
            break
        p = np.arange(1, n + 1, dtype=float)  # FITS image pixels; sky = (pixel - LTV) / LTM
        lo, hi = (p - 0.5 - float(ltv)) / float(ltm), (p + 0.5 - float(ltv)) / float(ltm)
        coords.update({f"{dim}_lo": (dim, lo), f"{dim}_hi": (dim, hi)})
    return xr.DataArray(data, dims=("y", "x"), coords=coords,
                        attrs={"units": str(h.get("BUNIT", "")), **wcs,
                               **({"RADESYS": h["RADESYS"]} if "RADESYS" in h else {})})


def _not_a_product(path) -> str:
    """Why ``path`` cannot be plotted, and what to do instead."""
    p = Path(path)
    if p.is_dir():
        if (p / "detections.csv").exists() or (p / "summary.json").exists():
            figs = [f.name for f in sorted(p.glob("*.png"))]
            runs = sorted(q.name for q in p.iterdir() if q.is_dir() and (q / "summary.json").exists())
            have = f"its figures are {', '.join(figs)}" if figs else "it has no figures"
            sub = f"; one directory per run: {', '.join(runs[:5])}{' ...' if len(runs) > 5 else ''}" if runs else ""
            return (f"{path}: the output directory of a transient search, not a product; {have}{sub}. "
                    "To plot its Bayes-factor map, write the result with SearchResult.to_zarr and plot that store")
        return f"{path}: a directory that is not a product xcube can plot (a search Zarr store has counts/expected)"
    try:
        with open(p, "rb") as f:
            head = f.read(30)
    except OSError:
        head = b""
    if head.startswith(b"SIMPLE"):
        import warnings

        from astropy.io import fits

        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                with fits.open(p) as hdul:
                    hdul.verify("exception")
                    for h in hdul:
                        _ = h.data
        except Exception as exc:  # noqa: BLE001 - the damage, named
            size = p.stat().st_size
            return (f"{path}: a damaged FITS file ({type(exc).__name__}: {exc}; {size} bytes, "
                    f"{'not ' if size % 2880 else ''}a multiple of 2880): truncated or corrupt")
    return f"{path}: not a product xcube can plot (light curve, power spectrum, spectrum, image, cube)"


def plot_file(path, **kwargs):
    """The standard figure of a product file: a power spectrum (``xcube
    pds``; frequency x power for rms normalisation), a light curve on broken
    time axes (a long-term light curve for ``xcube stitch`` output), a PHA
    spectrum (one row of a PHA type II file as ``"file.pha{k}"``, as
    :func:`xcube.io.ogip.read_spectrum` takes it), an image, or the peak
    Bayes-factor map of a transient-search Zarr store. A multi-band light curve shows every band (one curve each,
    labelled), or only ``band=`` (an index, a label or an ``(emin, emax)``
    pair [keV], see :func:`xcube.products.hardness.select_band`; named in
    the title).
    ``kwargs`` go to the figure function. Reads what it shows eagerly.
    ``ValueError`` naming the file when it cannot be drawn (not a product, a
    damaged FITS file, a light curve without good time). Returns the
    Figure."""
    import warnings

    from astropy.io.fits.verify import VerifyWarning

    from ..io.lightcurve_file import read_lightcurve
    from ..io.powspec import read_power_spectrum
    from ..products.hardness import select_band
    from . import lightcurves, maps, timing

    base, row = _row_of(path)  # ('file.pha{k}': FileNotFoundError naming the file without its {k})
    with warnings.catch_warnings():  # a damaged header: named below, not as astropy's warning
        warnings.simplefilter("ignore", VerifyWarning)
        kind = product_kind(base)
    if row is not None and kind != "spectrum":
        raise ValueError(f"{path}: {{{row}}} names row {row} of a PHA type II spectrum file, but {base} is not a "
                         f"spectrum ({kind.replace('_', ' ')})")
    if kwargs.get("band") is not None and kind != "lightcurve":
        raise ValueError(f"{path}: band= picks a band of a multi-band light curve; this file holds a "
                         f"{kind.replace('_', ' ')}")
    if kind == "power_spectrum":
        pds = read_power_spectrum(path)
        kwargs.setdefault("freq_power", pds.attrs.get("norm") == "frac")
        return timing.power_spectrum(pds, title=kwargs.pop("title", Path(path).name), **kwargs)
    if kind == "lightcurve":
        lc = read_lightcurve(path)
        lc.attrs.setdefault("source", str(path))
        title = kwargs.pop("title", Path(path).name)
        band = kwargs.pop("band", None)
        if "band" in lc.dims:
            if band is not None:
                lc = select_band(lc, band)
                title = f"{title} ({lc['band'].values})"
            else:
                title = f"{title} ({lc.sizes['band']} bands: {', '.join(str(b) for b in lc['band'].values)})"
        elif band is not None:  # one band: band= must name it (it was ignored)
            title = f"{title} ({_one_band(lc, band, path)})"
        if lc.attrs.get("stitched"):  # a light curve with an MJD column is still one observation
            return lightcurves.long_term_lightcurve(lc, title=title, **kwargs)
        return lightcurves.broken_lightcurve(lc, title=title, **kwargs)
    if kind == "spectrum":
        return _spectrum(path)
    if kind == "image":
        return maps.image(_image(path), title=kwargs.pop("title", Path(path).name), **kwargs)
    if kind == "cube":
        from ..bayes import log10_bayes_peak
        from ..io.cache import open_store

        # xcube's store (SearchResult.to_zarr) checked against its manifest (an unfinished or damaged one is an
        # error); another writer's store as it is
        ds = open_store(path, checksums=True, foreign_ok=True)

        return maps.bayes_map(log10_bayes_peak(ds["counts"], ds["expected"]),
                              title=kwargs.pop("title", Path(path).name), **kwargs)
    if kind == "events":
        raise ValueError(f"{path}: an event list, not a product; make one first (xcube lc / image / spectrum / pds)")
    raise ValueError(_not_a_product(path))


def _one_band(lc, band, path) -> str:
    """The label of the one band of the light curve ``lc`` (no ``band``
    dimension; ``"0.5-2keV"`` from attrs ``energy_band`` [keV], or saying
    that the file records none) when ``band`` names it as
    :func:`xcube.products.hardness.select_band` takes it (index 0 or -1, the
    label, or the ``(emin, emax)`` pair); else ``ValueError`` naming
    ``path``, the option and the band the file holds. Eager (attrs only)."""
    import xarray as xr

    from ..products.hardness import select_band
    from ..products.lightcurve import band_label

    eb = lc.attrs.get("energy_band")
    known = eb is not None and np.shape(eb) == (2,)
    label = band_label(eb) if known else "its energy band is not recorded"
    one = xr.Dataset(coords={"band": [label], "energy_lo": ("band", [float(eb[0]) if known else np.nan]),
                             "energy_hi": ("band", [float(eb[1]) if known else np.nan])})
    try:
        select_band(one, band)
    except ValueError:
        shown = band if isinstance(band, (str, int)) else repr(band)
        raise ValueError(f"{path}: --band {shown} (band=) is not in this light curve, which holds one band: "
                         f"{label} (index 0); give that band or none") from None
    return label


def figure_paths(paths, out=None, suffix: str = ".png") -> list:
    """Where the figures of the products ``paths`` go (what ``xcube plot``
    writes), one Path each, in order. One product and an ``out`` naming a
    file: ``out``. Otherwise in the directory ``out`` (an existing one, or a
    path ending in ``/``; default the current directory): the product's
    name with its last suffix replaced by ``suffix`` (``src.lc`` ->
    ``src.png``; a row of a PHA type II file keeps its row: ``src.pha{2}``
    -> ``src{2}.png``), except that products sharing that name keep their whole
    name (``src.lc`` and ``src.pha`` -> ``src.lc.png`` and ``src.pha.png``).
    ``ValueError`` when several products are given one file, or two would
    still share a figure (one file name in two directories). Eager (paths only;
    writes nothing)."""
    from ..products.naming import names_directory

    paths = [Path(p) for p in paths]
    if out is not None and not names_directory(out):
        if len(paths) > 1:
            raise ValueError(f"{out}: one figure file for {len(paths)} products; give a directory (a path "
                             "ending in /)")
        return [Path(out)]
    short = [_figure_name(p, suffix) for p in paths]
    names = [p.name + suffix if short.count(s) > 1 else s for p, s in zip(paths, short)]
    for name in dict.fromkeys(n for n in names if names.count(n) > 1):
        same = [str(p) for p, n in zip(paths, names) if n == name]
        raise ValueError(f"{', '.join(same)}: would share the figure {name}; plot them into separate "
                         "directories (--out DIR/)")
    where = Path(out) if out is not None else Path()
    return [where / n for n in names]


def plot_files(paths, out=None, *, dpi: int = 110, overwrite: bool = False, **kwargs) -> list:
    """The standard figure (:func:`plot_file`) of each product in ``paths``,
    saved under :func:`figure_paths` (``out``: a file for one product, or a
    directory); ``kwargs`` go to :func:`plot_file`. Every target is checked
    before the first figure is drawn: ``FileExistsError`` when one exists
    and ``overwrite`` is False (naming the other default, ``src.pha.png``,
    when the figure may be another product's of the same stem). Returns the
    Paths written. A file that cannot be plotted does not stop the others:
    afterwards a ``ValueError`` names each such file and why. ``dpi`` [dots per inch] from 10 to 2400 (``ValueError``
    otherwise, before anything is read). Eager: reads each product and
    writes its figure."""
    from ..products.naming import names_directory
    from .base import check_dpi, save_figure

    dpi = check_dpi(dpi)
    default = out is None or names_directory(out)
    outs = figure_paths(paths, out)
    for path, fig_path in zip(paths, outs):
        if fig_path.exists() and not overwrite:
            hint = ""
            whole = fig_path.with_name(Path(path).name + ".png")
            if default and fig_path != whole:
                hint = f", or name it --out {whole} (another product with the same stem?)"
            raise FileExistsError(f"{fig_path}: exists; pass --overwrite (overwrite=True) to replace it{hint}")
    done, failed = [], []
    for path, fig_path in zip(paths, outs):  # a product that cannot be plotted does not stop the others
        try:
            done.append(save_figure(plot_file(path, **kwargs), fig_path, dpi=dpi, overwrite=overwrite))
        except Exception as exc:  # noqa: BLE001 - one product's failure is reported with the others
            if len(paths) == 1:
                raise
            failed.append(f"{path}: {exc}")
    if failed:
        raise ValueError(f"{len(failed)} of {len(paths)} files not plotted ({'; '.join(failed)}); the figures of "
                         f"the others were written: {', '.join(map(str, done)) or 'none'}")
    return done
