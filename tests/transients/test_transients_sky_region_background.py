"""The search's background model with a sky region: ``res.cube``,
``res.expected`` and ``res.masks`` carry the WCS of their cells, so
``lightcurve(..., background=res)`` and ``net_lightcurve(lc, res)`` take
fk5 regions as well as physical ones."""
from __future__ import annotations

import numpy as np
import pytest
from conftest import real_file

import xcube
from xcube import simulate
from xcube.binning import cube_wcs
from xcube.regions import pixel_region, region_mask


@pytest.fixture(scope="module")
def searched():
    ev, truth = simulate.event_list("xmm-mos1", duration=5_000.0, sources=3, soft_protons=0, seed=3)
    return ev, truth, xcube.search_transients(ev, time_bin=100.0, size_arcsec=20.0)


def _check_net(ev, res, sky, time_bin):
    """The expected counts in the region are those of res.expected summed over
    the cells the region (placed with the events' own WCS) covers."""
    cells = region_mask(res.expected, pixel_region(sky, ev))  # a RegionSet: no WCS needed on the grid
    assert int(cells.sum()) > 0
    np.testing.assert_array_equal(region_mask(res.expected, sky).values, cells.values)
    ref = res.expected.where(cells).sum(("y", "x"), min_count=1)
    lc = xcube.lightcurve(ev, time_bin, region=sky, background=res)
    # the light curve's bins are the search's frames (a region's without those beyond its CCDs' good time)
    i0 = int(np.searchsorted(ref["time_lo"].values, lc["time_lo"].values[0]))
    np.testing.assert_allclose(ref["time_lo"].values[i0:i0 + lc.sizes["time"]], lc["time_lo"].values, atol=1e-6)
    ref = ref.values[i0:i0 + lc.sizes["time"]]
    np.testing.assert_allclose(lc["bkg_counts"].values, ref, equal_nan=True)
    good = lc["exposure"].values > 0
    np.testing.assert_allclose(lc["net_rate"].values[good],
                               (lc["counts"].values[good] - ref[good]) / lc["exposure"].values[good])
    net = xcube.net_lightcurve(xcube.lightcurve(ev, time_bin, region=sky), res, region=sky)
    np.testing.assert_allclose(net["bkg_counts"].values, ref, equal_nan=True)
    return lc, cells


def test_search_arrays_carry_the_cell_wcs(searched):
    ev, _, res = searched
    w = cube_wcs(res.expected)
    x, y = res.expected["x"].values, res.expected["y"].values
    jy, jx = np.meshgrid(np.arange(y.size), np.arange(x.size), indexing="ij")
    ra, dec = w.wcs_pix2world(jx, jy, 0)
    ev_ra, ev_dec = xcube.wcs(ev).wcs_pix2world(x[jx], y[jy], 0)
    np.testing.assert_allclose(ra, ev_ra, rtol=0, atol=1e-9)
    np.testing.assert_allclose(dec, ev_dec, rtol=0, atol=1e-9)
    keys = ("WCSAXES", "CTYPE1", "CRPIX1", "CDELT1", "CRVAL2", "CRPIX2", "CDELT2")
    for arr in (res.cube, res.masks, res.image):
        assert {k: arr.attrs[k] for k in keys} == {k: res.expected.attrs[k] for k in keys}
    assert int(xcube.region_mask(res.image, "fk5;" + f"circle({ra[5, 5]:.7f},{dec[5, 5]:.7f},1\")").sum()) == 1


def test_net_lightcurve_with_a_sky_region_around_a_source(searched):
    ev, truth, res = searched
    src = truth.sort_values("counts").iloc[-1]
    sky = f'fk5;circle({src["ra"]:.6f},{src["dec"]:.6f},40")'
    lc, cells = _check_net(ev, res, sky, 100.0)
    # the model holds the steady source: expected and observed counts agree to a few sigma
    n, mu = float(lc["counts"].sum()), float(np.nansum(lc["bkg_counts"].values))
    assert mu > 0.5 * src["counts"] and abs(n - mu) < 5 * np.sqrt(mu)
    # the same cells as a physical region
    phys = pixel_region(sky, ev)
    lc_phys = xcube.lightcurve(ev, 100.0, region=phys, background=res)
    np.testing.assert_allclose(lc_phys["bkg_counts"].values, lc["bkg_counts"].values, equal_nan=True)


def test_raw_mos1_search_background_in_a_sky_region():
    """The smoke test: raw MOS1 events, 100 s frames, a 40" fk5 circle."""
    ev = xcube.open_events(real_file("xmm", "P0001730201M1S002MIEVLI.FTZ"))
    res = xcube.search_transients(ev, time_bin=100.0)
    lc, cells = _check_net(ev, res, 'fk5;circle(263.6765,-32.5814,40")', 100.0)
    assert int(cells.sum()) == 14
    assert np.nansum(lc["bkg_counts"].values) == pytest.approx(8713.4, rel=1e-3)


def test_cut_outs_keep_their_sky_wcs(searched, tmp_path):
    """xarray copies attrs unchanged into a cut-out: its CRPIX must follow
    its first cell (written images, cube_wcs and sky regions on cut-outs of
    the search's arrays, which have no ra/dec coordinates)."""
    from astropy.io import fits
    from astropy.wcs import WCS

    from xcube.io.ogip import write_image

    ev, _, res = searched
    img = xcube.image(ev, size_arcsec=4.0).compute()
    cut = img.isel(x=slice(30, 70), y=slice(40, 90))
    w = WCS(fits.getheader(write_image(tmp_path / "cut.fits", cut)))
    np.testing.assert_allclose(w.wcs_pix2world(0, 0, 0), [cut["ra"].values[0, 0], cut["dec"].values[0, 0]],
                               rtol=0, atol=1e-9)
    np.testing.assert_allclose(cube_wcs(cut).wcs_pix2world(3, 5, 0), [cut["ra"].values[5, 3],
                                                                      cut["dec"].values[5, 3]], rtol=0, atol=1e-9)
    ra, dec = cube_wcs(res.expected).wcs_pix2world(12, 7, 0)
    sky = f'fk5;circle({float(ra):.7f},{float(dec):.7f},1")'
    full = xcube.region_mask(res.image, sky)
    assert int(full.sum()) == 1 and bool(full.values[7, 12])
    part = xcube.region_mask(res.image.isel(x=slice(10, None), y=slice(5, None)), sky)
    assert int(part.sum()) == 1 and bool(part.values[2, 2])
