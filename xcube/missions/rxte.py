"""RXTE PCA (Proportional Counter Array) science event files.

- Event data are in the ``XTE_SE`` extension (``EVENTS`` is accepted too,
  e.g. after decoding with HEASoft tools). The channel column is ``PHA``
  (0-255, or 0-63 in binned event modes); xcube exposes it as ``pi``.
- No linear PI-to-energy conversion: the PCA channel-to-energy relation
  depends on the gain epoch (1-5) and on the PCU, and is given by tables
  (``pcarmf`` / the RXTE "PCA energy-channel conversion" table, RXTE Cook Book
  and ABC Guide). ``energy`` is therefore NaN, with a warning; select on the
  channel column ``pi`` instead.
- Raw archived science-event files (GoodXenon, ``E_`` event modes) store each
  event as a bit-packed ``Event`` word (``TEVTB2`` describes its fields) and
  have no PHA column; some rows are time markers, not photons. xcube refuses
  them at open, naming the file: decode them first (HEASoft ``make_se`` for
  GoodXenon pairs, ``decodeevt``; or ``seextrct`` for products; RXTE ABC Guide).
- GTIs in ``STDGTI`` (or ``GTI``); some products spell the columns
  ``Start``/``Stop`` - the lookup is case-insensitive.
- Non-imaging collimator: no sky X/Y (pixel size 0); event modes time-tag
  each photon (resolution 1 us - 125 us), so frame time 0.
- Time: MJDREFI = 49353, MJDREFF = 6.965740740000000e-4 (1994-01-01 TT);
  PCA files carry a clock ``TIMEZERO`` (a few seconds) which the reader adds.
"""
from . import register
from .base import MissionProfile

PCA = register(
    MissionProfile(
        name="rxte-pca",
        mission="RXTE",
        instrument="PCA",
        telescop=("XTE",),
        instrume=("PCA",),
        columns={"time": "TIME", "pi": "PHA"},
        pi_to_kev=None,
        energy_note=(
            "RXTE PCA channels have no linear energy conversion (gain epoch and PCU dependent "
            "tables, RXTE Cook Book); keep the channel column"
        ),
        pi_range=(0, 255),
        energy_range=(2.0, 60.0),
        events_extension=("XTE_SE", "EVENTS"),
        gti_extensions=("STDGTI", "GTI", "STDGTI*"),
        gti_columns=("START", "STOP"),
        gti_ccd_pattern=None,
        screening=None,
        frame_time=0.0,
        pixel_arcsec=0.0,
        packed_columns=("EVENT",),
        decode_note=(
            "with HEASoft (GoodXenon: make_se joins the two half files, then decodeevt; other event modes: "
            "decodeevt), or extract products with seextrct (RXTE ABC Guide and Cook Book, event-mode data)"
        ),
    )
)
