"""Review p22 of the .xcube accessor: registered whichever xcube function
(or the user) imports xarray first, while ``import xcube`` stays lazy; cube
and image Datasets (Zarr) plot and write their counts; a (time, energy, y, x)
cube plots a frame summed over energy."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import matplotlib
import numpy as np
import pytest
import xarray as xr

import xcube

matplotlib.use("Agg")
ROOT = Path(__file__).resolve().parents[1]


def _fresh(code: str) -> str:
    """stdout of ``code`` in a fresh interpreter on this checkout."""
    env = {**os.environ, "PYTHONPATH": str(ROOT), "PYTHONDONTWRITEBYTECODE": "1", "PYTHONWARNINGS": "ignore"}
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-3000:]
    return out.stdout.strip()


# ---------------------------------------------------------------------- 2. registration
def test_import_xcube_stays_lazy():
    assert _fresh("import sys, xcube; print(sorted(m for m in ('xarray', 'numpy', 'dask', 'xcube.accessor') "
                  "if m in sys.modules))") == "[]"


@pytest.mark.parametrize("code", [
    "ev, _ = xcube.simulate.event_list('xmm-mos1', duration=1000, seed=1); out = [ev]",
    "ev, _ = xcube.simulate.event_list('xmm-mos1', duration=1000, seed=1); "
    "out = [xcube.bin_events(ev, time=100.0, size_arcsec=20.0), xcube.select(ev, energy_band=(0.5, 2.0))]",
    "from xcube.simulate import event_list; ev, _ = event_list('xmm-mos1', duration=1000, seed=1); out = [ev]",
    "import xarray as xr; out = [xr.Dataset(), xr.DataArray(np.zeros((2, 2)), dims=('y', 'x'))]",
])
def test_accessor_registered_after_import_xcube_whoever_imports_xarray(code):
    got = _fresh(f"import numpy as np\nimport xcube\n{code}\nprint(' '.join(o.xcube.kind for o in out))")
    assert got and "AttributeError" not in got


# ---------------------------------------------------------------------- 3. cube / image Datasets
@pytest.fixture(scope="module")
def products(tmp_path_factory):
    ev, _ = xcube.simulate.event_list("xmm-mos1", duration=3000.0, seed=2)
    cube = xcube.bin_events(ev, time=1000.0, size_arcsec=200.0)
    img = xcube.bin_events(ev, size_arcsec=200.0)
    tey = xcube.bin_events(ev, time=1000.0, energy=[0.2, 0.5, 2.0, 12.0], size_arcsec=200.0)
    return ev, cube, img, tey, tmp_path_factory.mktemp("p22acc")


def test_zarr_cube_dataset_plots_its_counts(products):
    _, cube, _, _, tmp = products
    cube.to_dataset().to_zarr(tmp / "cube.zarr", mode="w")  # as docs/binning.md writes it
    z = xr.open_zarr(tmp / "cube.zarr")
    assert z.xcube.kind == "cube" and "plot" in dir(z.xcube)
    fig = z.xcube.plot(frame=1)
    ref = cube.isel(time=1).values
    np.testing.assert_array_equal(fig.axes[0].images[0].get_array().data, ref)  # the counts of that frame
    with pytest.raises(TypeError, match="write does not apply to this cube"):
        z.xcube.write(tmp / "c.fits")


def test_image_dataset_plots_and_writes_its_counts(products, tmp_path):
    from astropy.io import fits

    _, _, img, _, _ = products
    ds = img.to_dataset()
    assert ds.xcube.kind == "image"
    assert ds.xcube.plot().axes[0].get_xlabel().startswith("RA")
    path = ds.xcube.write(tmp_path / "img.fits")
    with fits.open(path) as h:
        np.testing.assert_array_equal(h[0].data, img.values)
        assert h[0].header["CTYPE1"].startswith("RA")


def test_dataset_without_counts_says_what_it_is():
    ds = xr.Dataset({"a": (("y", "x"), np.zeros((2, 2))), "b": (("y", "x"), np.ones((2, 2)))})
    with pytest.raises(TypeError, match=r"holds an image but no 'counts' variable.*a, b"):
        ds.xcube.plot()


def test_time_energy_cube_plots_a_frame_summed_over_energy(products):
    _, _, _, tey, _ = products
    assert tey.dims == ("time", "energy", "y", "x") and tey.xcube.kind == "cube"
    fig = tey.xcube.plot(1)
    np.testing.assert_array_equal(fig.axes[0].images[0].get_array().data, tey.isel(time=1).sum("energy").values)
    other = tey.rename(energy="band")
    with pytest.raises(TypeError, match=r"band"):
        other.xcube.plot(0)
