"""Small FITS writers shared by the tests of xcube.frames (not a test module)."""
from __future__ import annotations

from pathlib import Path

import numpy as np
from astropy.io import fits


def write_frame(path, data=None, shape=(32, 32), level=1000.0, **header) -> Path:
    """A FITS image (float32 unless ``data`` says otherwise) with the given header keywords."""
    data = np.full(shape, level, np.float32) if data is None else data
    hdu = fits.PrimaryHDU(data)
    for key, value in header.items():
        hdu.header[key.replace("_", "-") if key in ("DATE_OBS", "TIME_OBS") else key] = value
    hdu.writeto(path, overwrite=True)
    return Path(path)
