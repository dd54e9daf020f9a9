"""The ``.xcube`` accessor on ``xr.Dataset`` and ``xr.DataArray``.

A thin forwarding layer: each method calls the xcube function of the same
name with the object as first argument, so ``ev.xcube.select(expr=...)`` is
``xcube.select(ev, expr=...)``. It registers on ``import xcube``.

To add a method, write a one-line forwarder here that imports the function
inside the method (keeps ``import xcube`` light and avoids import cycles).
"""
from __future__ import annotations

import xarray as xr

__all__ = ["XcubeDatasetAccessor", "XcubeDataArrayAccessor"]


@xr.register_dataset_accessor("xcube")
class XcubeDatasetAccessor:
    """``ds.xcube``: xcube functions on an EventList or product Dataset."""

    def __init__(self, obj: xr.Dataset):
        self._obj = obj

    def select(self, energy_band=None, expr=None, region=None, gti=None) -> xr.Dataset:
        """Same as :func:`xcube.select` on this EventList (lazy)."""
        from .select import select

        return select(self._obj, energy_band=energy_band, expr=expr, region=region, gti=gti)

    def bin(self, time=None, energy=None, y=None, x=None, **kwargs) -> xr.DataArray:
        """Same as :func:`xcube.bin_events` on this EventList (lazy counts cube)."""
        from .binning import bin_events

        return bin_events(self._obj, time=time, energy=energy, y=y, x=x, **kwargs)

    def region_mask(self, region) -> xr.DataArray:
        """Same as :func:`xcube.regions.region_mask` on this EventList (lazy)."""
        from .regions import region_mask

        return region_mask(self._obj, region)

    def region_area(self, region, samples: int = 4_000_000) -> float:
        """Same as :func:`xcube.regions.region_area`, with this object's WCS."""
        from .regions import region_area

        return region_area(region, self._obj, samples=samples)

    def rebin(self, factor: int | None = None, *, time_bin: float | None = None) -> xr.Dataset:
        """Same as :func:`xcube.products.rebin` on this light curve (exposure-weighted; lazy)."""
        from .products.rebin import rebin

        return rebin(self._obj, factor, time_bin=time_bin)

    def split_by_gti(self, min_exposure: float = 0.0) -> list:
        """Same as :func:`xcube.split_by_gti` on this light curve."""
        from .products.rebin import split_by_gti

        return split_by_gti(self._obj, min_exposure=min_exposure)

    def power_spectrum(self, segment: float = 256.0, dt: float | None = None, norm: str = "leahy", rebin=None,
                       **kwargs) -> xr.Dataset:
        """Same as :func:`xcube.power_spectrum` on this EventList or light curve."""
        from .products.powerspectrum import power_spectrum

        return power_spectrum(self._obj, segment, dt, norm, rebin, **kwargs)

    def hardness_ratio(self, soft=(0.5, 2.0), hard=(2.0, 10.0), **kwargs) -> xr.Dataset:
        """Same as :func:`xcube.hardness_ratio` on this multi-band light curve."""
        from .products.hardness import hardness_ratio

        return hardness_ratio(self._obj, soft, hard, **kwargs)

    def to_stingray(self, **kwargs):
        """Same as :func:`xcube.to_stingray` (EventList, light curve or power spectrum)."""
        from .products.stingray_interop import to_stingray

        return to_stingray(self._obj, **kwargs)


@xr.register_dataarray_accessor("xcube")
class XcubeDataArrayAccessor:
    """``da.xcube``: xcube functions on a DataArray (image, cube, light curve)."""

    def __init__(self, obj: xr.DataArray):
        self._obj = obj

    def region_mask(self, region) -> xr.DataArray:
        """Boolean (y, x) mask of the bin centres inside ``region``; see
        :func:`xcube.regions.region_mask`."""
        from .regions import region_mask

        return region_mask(self._obj, region)

    def region_area(self, region, samples: int = 4_000_000) -> float:
        """Same as :func:`xcube.regions.region_area`, with this object's WCS."""
        from .regions import region_area

        return region_area(region, self._obj, samples=samples)
