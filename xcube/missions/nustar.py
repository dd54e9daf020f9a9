"""NuSTAR FPMA/FPMB.

- PI channels of 40 eV from 1.6 keV: E[keV] = 1.6 + 0.04 * PI (NuSTAR
  Observatory Guide / CALDB ``nuCpi2e``), channels 0-4095 (1.6-165.4 keV).
- Sky X/Y pixels of 2.45810736 arcsec (TCDLT of L2 event files).
- GTIs in the ``GTI`` extension; no frames (event-by-event readout, dead time
  ~2.5 ms per event).
"""
from . import register
from .base import MissionProfile, linear_energy

_COMMON = dict(
    mission="NuSTAR",
    telescop=("NUSTAR",),
    pi_to_kev=linear_energy(0.04, 1.6),
    energy_note="E = 1.6 + 0.04*PI keV (NuSTAR CALDB)",
    pi_range=(0, 4095),
    energy_range=(3.0, 79.0),
    gti_extensions=("GTI",),
    screening=None,
    frame_time=0.0,
    pixel_arcsec=2.45810736,
)
FPMA = register(MissionProfile(name="nustar-fpma", instrument="FPMA", instrume=("FPMA",), **_COMMON))
FPMB = register(MissionProfile(name="nustar-fpmb", instrument="FPMB", instrume=("FPMB",), **_COMMON))
