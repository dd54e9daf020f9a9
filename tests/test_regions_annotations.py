"""DS9 region files as users save them: text labels and point markers beside
the shapes are ignored with a warning (a file of labels alone is still
refused); a pixel size on a sky shape is refused with the parser's reason;
region files and cell WCSs carry the frame of the events' RA/Dec (FK5)."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

import xcube
from xcube.io.ds9 import circles_from_table, to_ds9
from xcube.regions import pixel_region


@pytest.fixture
def events(make_event_file):
    return xcube.open_events(make_event_file(n=2000, header={"RADESYS": "FK5", "EQUINOX": 2000.0}))


def test_annotations_beside_shapes_are_ignored(events):
    c = xcube.wcs(events).pixel_to_world(26000, 26000)
    circle = f'fk5;circle({c.ra.deg},{c.dec.deg},30")'
    ref = pixel_region(circle, events)
    with pytest.warns(UserWarning, match=r"ignored 2 shape\(s\) without an area \(point, text\)"):
        rs = pixel_region(f"{circle}\ntext({c.ra.deg},{c.dec.deg}) text={{src}}\npoint({c.ra.deg},{c.dec.deg})",
                          events)
    assert len(rs.include) == len(ref.include) == 1
    with pytest.raises(ValueError, match="has no area"):
        pixel_region(f"fk5;text({c.ra.deg},{c.dec.deg}) text={{src}}", events)


def test_pixel_size_on_a_sky_shape_says_why(events):
    with pytest.raises(ValueError, match=r"Cannot parse sky region angle.*not pixels 30p/30i"):
        pixel_region("fk5;circle(263.6,-32.5,30p)", events)


def test_region_files_and_cell_wcs_carry_the_events_frame(events):
    text = to_ds9(circles_from_table(pd.DataFrame({"ra": [263.6], "dec": [-32.5]}), 10.0))
    assert "icrs" not in text and ("fk5" in text or "j2000" in text)  # (regions writes FK5 as DS9's j2000)
    img = xcube.image(events, size_arcsec=4.0, screening=False)
    w = xcube.binning.cube_wcs(img)
    assert w.wcs.radesys == "FK5" and w.wcs.equinox == 2000.0
    iy, ix = 3, 5
    cell = w.pixel_to_world(ix, iy)
    x = float(img.x_lo.values[ix] + img.x_hi.values[ix]) / 2
    y = float(img.y_lo.values[iy] + img.y_hi.values[iy]) / 2
    assert cell.separation(xcube.wcs(events).pixel_to_world(x, y)).arcsec < 1e-6
    assert np.isfinite(cell.ra.deg)
