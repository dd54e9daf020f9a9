"""Insight-HXMT (Hard X-ray Modulation Telescope): LE, ME and HE.

PI-to-energy relations (linear, from the Insight-HXMT Data Reduction Guide /
HXMTDAS user manual, IHEP, the calibration steps ``lepical``, ``mepical`` and
``hepical``):

- LE (Low Energy, swept-charge devices): 1536 channels,
  E[keV] = 0.1 + 13 * PI / 1536.
- ME (Medium Energy, Si-PIN): 1024 channels, E[keV] = 3 + 60 * PI / 1024.
- HE (High Energy, NaI/CsI phoswich): 256 channels, E[keV] = 15 + 370 * PI / 256.

Other facts (Zhang S.-N. et al. 2020, Sci. China Phys. Mech. Astron. 63,
249502, "Overview to the Insight-HXMT satellite"):

- Collimated, non-imaging instruments: no sky X/Y columns, pixel size 0.
- Time resolution LE ~1 ms, ME ~20 us, HE ~2 us; no CCD frames in the xcube
  sense (frame time 0).
- Screened event files (``lescreen``/``mescreen``/``hescreen``) hold the
  events in ``Events`` and the good time in ``GTI`` (``START``/``STOP``).
- Time: seconds since MJDREFI = 55927, MJDREFF = 7.6601852e-4
  (2012-01-01 TT), TIMESYS = TT.
"""
from . import register
from .base import MissionProfile, linear_energy

_COMMON = dict(
    mission="Insight-HXMT",
    telescop=("HXMT",),
    columns={"time": "TIME", "pi": "PI"},
    gti_extensions=("GTI",),
    gti_ccd_pattern=None,
    screening=None,  # the HXMTDAS screening tasks select events already
    frame_time=0.0,
    pixel_arcsec=0.0,
)

LE = register(
    MissionProfile(
        name="hxmt-le",
        instrument="LE",
        instrume=("LE", "HXMT/LE", "HXMT-LE"),
        pi_to_kev=linear_energy(13.0 / 1536.0, 0.1),
        energy_note="E = 0.1 + 13*PI/1536 keV (Insight-HXMT Data Reduction Guide)",
        pi_range=(0, 1535),
        energy_range=(0.7, 13.0),
        **_COMMON,
    )
)
ME = register(
    MissionProfile(
        name="hxmt-me",
        instrument="ME",
        instrume=("ME", "HXMT/ME", "HXMT-ME"),
        pi_to_kev=linear_energy(60.0 / 1024.0, 3.0),
        energy_note="E = 3 + 60*PI/1024 keV (Insight-HXMT Data Reduction Guide)",
        pi_range=(0, 1023),
        energy_range=(5.0, 30.0),
        **_COMMON,
    )
)
HE = register(
    MissionProfile(
        name="hxmt-he",
        instrument="HE",
        instrume=("HE", "HXMT/HE", "HXMT-HE"),
        pi_to_kev=linear_energy(370.0 / 256.0, 15.0),
        energy_note="E = 15 + 370*PI/256 keV (Insight-HXMT Data Reduction Guide)",
        pi_range=(0, 255),
        energy_range=(20.0, 250.0),
        **_COMMON,
    )
)
