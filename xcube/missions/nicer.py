"""NICER XTI (X-ray Timing Instrument, 52 active silicon drift detectors).

- PI channels of 10 eV: E[keV] = 0.01 * PI (the EBOUNDS of the NICER CALDB
  response, channel i = [10 i, 10 (i+1)) eV; HEASARC NICER analysis threads):
  PI 0-1500, 1501 channels, those of the CALDB RMF (the NICER team's tools
  use ``NICER_PI_MAX = 1500``); useful band 0.2-12 keV.
- No imaging: the event files have no sky X/Y columns (``rawx``/``rawy`` and
  ``det_id`` name the detector), so there is no WCS and pixel size 0.
- Event by event (time resolution < 300 ns, no frames): frame time 0.
- GTIs in the ``GTI`` extension (``nicerl2`` cleaned files). Early files
  carry ``TIMEZERO`` (e.g. -1 s); the reader adds it to ``TIME``.
- Time: MJDREFI = 56658, MJDREFF = 7.775925925925930e-4 (2014-01-01 TT).
"""
from . import register
from .base import MissionProfile, linear_energy

XTI = register(
    MissionProfile(
        name="nicer-xti",
        mission="NICER",
        instrument="XTI",
        telescop=("NICER",),
        instrume=("XTI",),
        columns={"time": "TIME", "pi": "PI"},
        pi_to_kev=linear_energy(0.01),
        energy_note="10 eV PI channels (NICER CALDB EBOUNDS): E = 0.01*PI keV",
        pi_range=(0, 1500),  # 1501 channels, as the CALDB RMF
        energy_range=(0.2, 12.0),
        gti_extensions=("GTI", "STDGTI"),
        gti_ccd_pattern=None,
        screening=None,  # nicerl2 applies the standard screening
        frame_time=0.0,
        pixel_arcsec=0.0,
    )
)
