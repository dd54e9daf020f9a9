"""SRG/eROSITA (seven telescope modules TM1-TM7), eSASS event files.

Source: eROSITA-DE DR1 product descriptions ("eROSITA standard FITS file
extensions" and "eSASS standard header keywords", erosita.mpe.mpg.de/dr1).

- ``PI`` is the calibrated energy in eV (a float column): E[keV] = PI / 1000.
- Sky ``X``/``Y`` in pixels of 0.05 arcsec (as XMM), WCS from the column keywords.
- ``TM_NR`` tells the module of each event; module-specific extensions end
  in the module number, so per-module GTIs are ``GTI1`` ... ``GTI7``
  (``FLAREGTIn`` after flare filtering); they are kept like per-CCD GTIs.
- Frame time 50 ms (``FRAMETIM`` = 50 ms, ``DATAMODE = 'FRAMESTORE'``).
- Default screening: valid patterns, ``PAT_TYP >= 1 && PAT_TYP <= 4`` (singles to
  quadruples; negative values are invalid patterns).
- TELESCOP = 'eROSITA' (MISSION = 'SRG'), INSTRUME = 'TMn' or 'merged'.
- Time: MJDREF = 51543.875 (2000-01-01T00:00:00 Moscow time), TIMESYS = TT.
"""
from . import register
from .base import MissionProfile, linear_energy

TM = register(
    MissionProfile(
        name="erosita",
        mission="SRG/eROSITA",
        instrument="eROSITA",
        telescop=("EROSITA", "SRG", "SRG/EROSITA"),
        instrume=("TM?", "MERGED", "EROSITA", "FM?"),
        pi_to_kev=linear_energy(0.001),
        energy_note="PI in eV (eSASS): E = PI/1000 keV",
        pi_range=(0, 20000),
        energy_range=(0.2, 10.0),
        gti_extensions=("GTI?", "FLAREGTI?", "GTI", "FLAREGTI"),
        gti_ccd_keywords=(),
        gti_ccd_pattern=r"(?:FLARE)?GTI(\d)",
        screening="PAT_TYP >= 1 && PAT_TYP <= 4",
        frame_time=0.05,
        pixel_arcsec=0.05,
        image_arcsec=4.0,
        lc_rate_corrected=True,  # srctool: RATE = net counts / (TIMEDEL x FRACEXP)
        supported_modes=("FRAMESTORE",),
    )
)
