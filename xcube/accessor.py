"""The ``.xcube`` accessor on ``xr.Dataset`` and ``xr.DataArray``.

A thin forwarding layer: each method calls the xcube function of the same
name with the object as first argument, so ``ev.xcube.select(expr=...)`` is
``xcube.select(ev, expr=...)``. It registers on ``import xcube``.

Each object gets the methods that fit what it is (:func:`kind_of`):

- event lists (``events``): ``select``, ``bin``, ``lightcurve``, ``image``,
  ``spectrum``, ``power_spectrum``, ``region_mask``, ``region_area``,
  ``to_stingray``, ``times``, ``plot``;
- light curves (``lightcurve``): ``rebin``, ``split_by_gti``,
  ``power_spectrum``, ``hardness_ratio``, ``to_stingray``, ``times``,
  ``with_mjd``, ``write``, ``plot``;
- spectra (``spectrum``): ``group``, ``write``, ``plot``;
- power spectra (``power_spectrum``): ``to_stingray``, ``write``, ``plot``;
- images (``image``, DataArrays on y/x): ``region_mask``, ``region_area``,
  ``write``, ``plot``;
- cubes (``cube``, DataArrays on time and y/x): ``region_mask``,
  ``region_area``, ``times``, ``with_mjd``, ``plot`` (one frame);
- anything else (``other``): ``region_mask``, ``region_area``.

A DataArray along time alone (a light-curve column) gets ``times`` and
``with_mjd`` (the light curve's ``time`` coordinate carries its MJDREF and
TIMESYS, so ``lc["rate"].xcube.times()`` works); other DataArrays get the methods of ``other``. A cube with an
energy axis, (time, energy, y, x), plots one frame summed over energy; a
cube with any other extra dimension refuses ``plot`` with a TypeError. A
Dataset holding an image or a cube (``cube.to_dataset()``, or one read back
from Zarr) works on its ``counts`` variable (or its one data variable on
those dims), with the Dataset's attrs under the variable's.

A method that does not fit (``lc.xcube.select``) raises ``TypeError`` saying
what the object is and what to call instead; ``dir(obj.xcube)`` lists only
the methods that fit. To add a method, write a one-line forwarder that
imports the function inside the method, and add it to ``_METHODS`` and to
the list above (a test checks that the two agree).
"""
from __future__ import annotations

import xarray as xr

__all__ = ["XcubeDatasetAccessor", "XcubeDataArrayAccessor", "kind_of"]


def kind_of(obj) -> str:
    """What an xcube object is: ``"events"``, ``"lightcurve"``,
    ``"spectrum"``, ``"power_spectrum"``, ``"image"``, ``"cube"`` or
    ``"other"`` (from its dimensions). Eager (dims only; no data read)."""
    dims = set(obj.dims)
    if "event" in dims:
        return "events"
    if "freq" in dims:
        return "power_spectrum"
    if "channel" in dims:
        return "spectrum"
    if "time" in dims and {"y", "x"} <= dims:
        return "cube"
    if "time" in dims:
        return "lightcurve"
    if {"y", "x"} == dims:
        return "image"
    return "other"


_METHODS = {
    "events": ("select", "bin", "lightcurve", "image", "spectrum", "power_spectrum", "region_mask", "region_area",
               "to_stingray", "times", "plot"),
    "lightcurve": ("rebin", "split_by_gti", "power_spectrum", "hardness_ratio", "to_stingray", "times", "with_mjd",
                   "write", "plot"),
    "spectrum": ("group", "write", "plot"),
    "power_spectrum": ("to_stingray", "write", "plot"),
    "image": ("region_mask", "region_area", "write", "plot"),
    "cube": ("region_mask", "region_area", "times", "with_mjd", "plot"),
    "other": ("region_mask", "region_area"),
}
_ADVICE = {"select": "select the events first: xcube.select(events, ...)",
           "bin": "bin an event list: events.xcube.bin(...) or xcube.bin_events",
           "lightcurve": "make light curves from an event list", "image": "make images from an event list",
           "spectrum": "make spectra from an event list"}


class _Base:
    _table = _METHODS

    def __init__(self, obj):
        self._obj = obj

    def _methods(self) -> tuple:
        return self._table.get(self.kind, _METHODS["other"])

    @property
    def kind(self) -> str:
        """What the object is (see :func:`kind_of`)."""
        return kind_of(self._obj)

    def _need(self, method: str):
        kind, methods = self.kind, self._methods()
        if method not in methods:
            hint = _ADVICE.get(method, f"it works on {', '.join(k for k, m in self._table.items() if method in m)}")
            raise TypeError(f".xcube.{method} does not apply to this {kind.replace('_', ' ')}: {hint}; here you "
                            f"can use {', '.join(methods)}")
        return self._obj

    def __dir__(self):
        return sorted(set(self._methods()) | {"kind"})

    def times(self, to: str = "mjd", **kwargs):
        """Same as :func:`xcube.times` on this object's ``time`` (MJD, ISO UTC...)."""
        from .times import times

        obj = self._need("times")
        return times(obj["time"], obj, to=to, **kwargs)

    def with_mjd(self, utc: bool = True):
        """Same as :func:`xcube.with_mjd`: ``mjd`` and ``utc`` coordinates along time."""
        from .times import with_mjd

        return with_mjd(self._need("with_mjd"), utc=utc)

    def region_mask(self, region) -> xr.DataArray:
        """Same as :func:`xcube.regions.region_mask` on this object (lazy)."""
        from .regions import region_mask

        return region_mask(self._need("region_mask"), region)

    def region_area(self, region, samples: int = 4_000_000) -> float:
        """Same as :func:`xcube.regions.region_area`, with this object's WCS."""
        from .regions import region_area

        return region_area(region, self._need("region_area"), samples=samples)


@xr.register_dataset_accessor("xcube")
class XcubeDatasetAccessor(_Base):
    """``ds.xcube``: xcube functions on an EventList or product Dataset."""

    def select(self, energy_band=None, expr=None, region=None, gti=None) -> xr.Dataset:
        """Same as :func:`xcube.select` on this EventList: ``energy_band``
        ``(emin, emax)`` [keV], ``gti`` [s, mission time]. Returns an EventList
        on dim ``event``, its columns lazy; eager: one pass over the columns
        the criteria read, to count the kept events per chunk."""
        from .select import select

        return select(self._need("select"), energy_band=energy_band, expr=expr, region=region, gti=gti)

    def bin(self, time=None, energy=None, y=None, x=None, **kwargs) -> xr.DataArray:
        """Same as :func:`xcube.bin_events` on this EventList: widths in s
        (time), keV (energy), sky pixels (y, x). Returns the ``counts`` cube,
        dims (time, energy, y, x) for the axes given, lazy (Dask, chunked
        along time); eager: axes, coordinates, exposure and one pass over
        ``time``."""
        from .binning import bin_events

        return bin_events(self._need("bin"), time=time, energy=energy, y=y, x=x, **kwargs)

    def lightcurve(self, time_bin, **kwargs) -> xr.Dataset:
        """Same as :func:`xcube.lightcurve` on this EventList: ``time_bin``
        [s]. Returns a Dataset on dim ``time`` (plus ``band`` for several
        bands), rates in count/s; counts and rates lazy, the time axis and
        exposure eager."""
        from .products.lightcurve import lightcurve

        return lightcurve(self._need("lightcurve"), time_bin, **kwargs)

    def image(self, bin_size=None, **kwargs) -> xr.DataArray:
        """Same as :func:`xcube.image` on this EventList: ``bin_size`` in sky
        pixels (or ``size_arcsec=`` [arcsec]). Returns the (y, x) ``counts``
        DataArray, lazy; eager: the grid and coordinates."""
        from .products.image import image

        return image(self._need("image"), bin_size, **kwargs)

    def spectrum(self, region=None, background=None, **kwargs) -> xr.Dataset:
        """Same as :func:`xcube.spectrum` on this EventList. Returns a Dataset
        on dim ``channel`` (``counts``, ``energy_lo``/``energy_hi`` [keV],
        ``exposure`` [s]); lazy unless ``group_min`` is given."""
        from .products.spectrum import spectrum

        return spectrum(self._need("spectrum"), region, background, **kwargs)

    def rebin(self, factor: int | None = None, *, time_bin: float | None = None) -> xr.Dataset:
        """Same as :func:`xcube.products.rebin` on this light curve: bins
        ``factor`` times wider, or ``time_bin`` [s] wide (exposure-weighted).
        Returns a Dataset with the same variables and dims on a shorter
        ``time`` (``n_bins // factor``; an incomplete last group is dropped);
        lazy when the light curve is."""
        from .products.rebin import rebin

        return rebin(self._need("rebin"), factor, time_bin=time_bin)

    def split_by_gti(self, min_exposure: float = 0.0) -> list:
        """Same as :func:`xcube.split_by_gti` on this light curve
        (``min_exposure`` [s]): a list of Datasets, one per GTI, each on its
        own part of ``time``. Eager on the time coordinates; data stay lazy."""
        from .products.rebin import split_by_gti

        return split_by_gti(self._need("split_by_gti"), min_exposure=min_exposure)

    def power_spectrum(self, segment: float = 256.0, dt: float | None = None, norm: str = "leahy", rebin=None,
                       **kwargs) -> xr.Dataset:
        """Same as :func:`xcube.power_spectrum` on this EventList or light
        curve: ``segment`` and ``dt`` [s]. Returns a Dataset on ``freq`` [Hz];
        computed (eager, streamed one event chunk at a time) unless
        ``compute=False``."""
        from .products.powerspectrum import power_spectrum

        return power_spectrum(self._need("power_spectrum"), segment, dt, norm, rebin, **kwargs)

    def hardness_ratio(self, soft=(0.5, 2.0), hard=(2.0, 10.0), **kwargs) -> xr.Dataset:
        """Same as :func:`xcube.hardness_ratio` on this multi-band light
        curve: ``soft``/``hard`` as ``(emin, emax)`` [keV] or band labels.
        Returns a Dataset on ``time``; lazy when the light curve is."""
        from .products.hardness import hardness_ratio

        return hardness_ratio(self._need("hardness_ratio"), soft, hard, **kwargs)

    def group(self, min_counts: int) -> xr.Dataset:
        """Same as :func:`xcube.products.group_spectrum` on this spectrum:
        at least ``min_counts`` counts per group; adds ``grouping`` and
        ``quality`` on ``channel``. Computes the counts (eager)."""
        from .products.grouping import group_spectrum

        return group_spectrum(self._need("group"), min_counts)

    def to_stingray(self, **kwargs):
        """Same as :func:`xcube.to_stingray` (EventList, light curve or power
        spectrum; times in s): a ``stingray.EventList`` (one entry per
        event), ``Lightcurve`` (one per time bin) or
        ``AveragedPowerspectrum`` (one per frequency). Computes this object
        (eager)."""
        from .products.stingray_interop import to_stingray

        return to_stingray(self._need("to_stingray"), **kwargs)

    def write(self, path, **kwargs):
        """Write this light curve, spectrum or power spectrum as its OGIP/FITS
        file (:func:`xcube.write_lightcurve`, :func:`xcube.write_spectrum`,
        :func:`xcube.io.powspec.write_power_spectrum`), or the ``counts`` of
        this image Dataset (:func:`xcube.write_image`). Eager; returns the path."""
        obj, kind = self._need("write"), self.kind
        if kind == "image":
            return XcubeDataArrayAccessor(_counts_of(obj, kind)).write(path, **kwargs)
        if kind == "lightcurve":
            from .io.ogip import write_lightcurve as writer
        elif kind == "spectrum":
            from .io.ogip import write_spectrum as writer
        else:
            from .io.powspec import write_power_spectrum as writer
        return writer(path, obj, **kwargs)

    def plot(self, kind: str | None = None, *, figure_kw: dict | None = None, **kwargs):
        """The standard figure, the one ``xcube plot`` draws for the product's
        file: a light curve on broken time axes
        (:func:`xcube.plot.broken_lightcurve`: total, background and net,
        one curve per band; given ``ax=``, :func:`xcube.plot.lightcurve`; a
        stitched one long-term), a spectrum, a power spectrum (frequency x
        power for rms normalisation); for an event list a quick look: its
        image (``kind="image"``, default; ``size_arcsec=4``) or light curve
        (``kind="lightcurve"``; ``time_bin=100`` s). For an event list the
        keywords that only the figure function takes (``title``, ``log``,
        ``cmap``, ``max_panels``...) go to it, the others to the product
        function (``background`` is the product's region); ``figure_kw``
        passes any figure keyword explicitly. A Dataset holding an image or
        a cube plots its ``counts`` as the DataArray accessor does (for a
        cube, ``frame=`` picks the frame). Computes what it shows; returns
        the Figure."""
        from . import plot

        obj, what = self._need("plot"), self.kind
        fig_kw = dict(figure_kw or {})
        if what in ("image", "cube"):
            if kind is not None:
                raise ValueError(f"plot(kind={kind!r}): a Dataset holding an {what} plots its counts; give no kind"
                                 + (" (frame= picks the cube's frame)" if what == "cube" else ""))
            return XcubeDataArrayAccessor(_counts_of(obj, what)).plot(**kwargs, **fig_kw)
        if what == "events":
            if (kind or "image") == "image":
                from .products.image import image

                product, figure = _split_kwargs(kwargs, image, plot.image)
                product.setdefault("size_arcsec", 4.0)
                return plot.image(self.image(**product).compute(), **figure, **fig_kw)
            if kind == "lightcurve":
                from .products.lightcurve import lightcurve

                product, figure = _split_kwargs(kwargs, lightcurve, plot.broken_lightcurve)
                lc = self.lightcurve(product.pop("time_bin", 100.0), **product).compute()
                return plot.broken_lightcurve(lc, **figure, **fig_kw)
            raise ValueError(f"plot(kind={kind!r}): an event list plots as kind='image' or 'lightcurve'")
        kwargs.update(fig_kw)
        if what == "lightcurve":
            if kwargs.get("ax") is not None:
                return plot.lightcurve(obj.compute(), **kwargs)
            if obj.attrs.get("stitched"):
                return plot.long_term_lightcurve(obj, **kwargs)
            return plot.broken_lightcurve(obj, **kwargs)
        if what == "spectrum":
            return plot.spectrum(obj, **kwargs)
        kwargs.setdefault("freq_power", obj.attrs.get("norm") == "frac")
        return plot.power_spectrum(obj.compute(), **kwargs)


def _counts_of(ds: xr.Dataset, what: str) -> xr.DataArray:
    """The counts DataArray of a Dataset holding an image or a cube: its
    ``counts`` variable, else its one data variable on the Dataset's y/x
    (and time) dims, with the Dataset's attrs under the variable's (the WCS
    keywords); ``TypeError`` naming the variables otherwise. Lazy."""
    if "counts" in ds.data_vars:
        da = ds["counts"]
    else:
        need = {"y", "x"} | ({"time"} if what == "cube" else set())
        found = [k for k, v in ds.data_vars.items() if need <= set(v.dims)]
        if len(found) != 1:
            raise TypeError(f".xcube: this Dataset holds an {what} but no 'counts' variable, and "
                            f"{'several' if found else 'no'} data variables on {sorted(need)} "
                            f"({', '.join(map(str, ds.data_vars)) or 'none'}); use ds[<name>].xcube")
        da = ds[found[0]]
    return da.assign_attrs({**ds.attrs, **da.attrs})


def _split_kwargs(kwargs: dict, product_func, figure_func) -> tuple[dict, dict]:
    """``(product keywords, figure keywords)``: a keyword goes to the figure
    when ``figure_func`` takes it and ``product_func`` does not."""
    import inspect

    product_params = set(inspect.signature(product_func).parameters)
    figure_params = set(inspect.signature(figure_func).parameters)
    figure = {k: v for k, v in kwargs.items() if k in figure_params and k not in product_params}
    return {k: v for k, v in kwargs.items() if k not in figure}, figure


@xr.register_dataarray_accessor("xcube")
class XcubeDataArrayAccessor(_Base):
    """``da.xcube``: xcube functions on a DataArray (image, cube)."""

    _table = {"image": ("region_mask", "region_area", "write", "plot"),
              "cube": ("region_mask", "region_area", "times", "with_mjd", "plot"),
              "lightcurve": ("times", "with_mjd")}

    def write(self, path, **kwargs):
        """Same as :func:`xcube.write_image` for this (y, x) image. Eager."""
        from .io.ogip import write_image

        return write_image(path, self._need("write"), **kwargs)

    def plot(self, frame=0, **kwargs):
        """An image (RA/Dec axes, :func:`xcube.plot.image`) or one ``frame`` of
        a (time, y, x) cube (:func:`xcube.plot.cube_frame`; an index, or a
        time [s]); a (time, energy, y, x) cube shows that frame summed over
        energy. Computes the image, or only that frame; returns the Figure.
        A cube with another extra dim raises ``TypeError`` naming it."""
        from . import plot

        obj = self._need("plot")
        if self.kind == "cube":
            extra = [d for d in obj.dims if d not in ("time", "energy", "y", "x")]
            if extra:
                raise TypeError(f".xcube.plot: this cube has dims {obj.dims}; it plots (time, y, x) or "
                                f"(time, energy, y, x) cubes: select or sum {extra} first")
            if "energy" in obj.dims:
                obj = obj.sum("energy", keep_attrs=True)
            return plot.cube_frame(obj, frame, **kwargs)
        return plot.image(obj.compute(), **kwargs)
