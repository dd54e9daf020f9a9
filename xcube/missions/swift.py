"""Swift XRT (X-Ray Telescope).

- PI channels of 10 eV: E[keV] = 0.01 * PI, channels 0-1023 (EBOUNDS of the
  XRT RMFs in the CALDB; Swift XRT Data Reduction Guide, sect. on ``xrtpi``).
- Sky X/Y pixels of 2.357 arcsec (XRT Users' Guide: 2.36 arcsec per CCD pixel;
  ``TCDLT`` = 6.548e-4 deg in level-2 files), reference pixel 500.5.
- Frame time: Photon Counting (``DATAMODE = 'PHOTON'``) 2.5073 s; Windowed
  Timing 1.766 ms (XRT Users' Guide, table 2.1). Imaging analyses accept PC.
- Default screening by data mode (XRT Data Reduction Guide, grade selection):
  Photon Counting grades 0-12 (``GRADE <= 12``), Windowed Timing grades 0-2
  (``GRADE <= 2``). The mode is the ``DATAMODE`` keyword (``PHOTON``,
  ``WINDOWED``), else the file name's mode code (``sw<obsid>xpc...``,
  ``sw<obsid>xwt...``; TDRSS ``...msxwt...``); an unknown mode gets PC's.
- GTIs in the ``GTI`` extension of cleaned (``xrtpipeline``) files.
- Time: MJDREFI = 51910, MJDREFF = 7.428703703703703e-4 (2001-01-01 TT).
"""
from . import register
from .base import MissionProfile, linear_energy

XRT = register(
    MissionProfile(
        name="swift-xrt",
        mission="Swift",
        instrument="XRT",
        telescop=("SWIFT",),
        instrume=("XRT",),
        pi_to_kev=linear_energy(0.01),
        energy_note="10 eV PI channels (XRT CALDB EBOUNDS): E = 0.01*PI keV",
        pi_range=(0, 1023),
        energy_range=(0.3, 10.0),
        gti_extensions=("GTI", "STDGTI"),
        gti_ccd_pattern=None,
        screening="GRADE <= 12",
        mode_screening=(("WINDOWED", "GRADE <= 2"), ("PHOTON", "GRADE <= 12")),
        mode_file_names=((r"^sw\d{11}(ms)?xwt", "WINDOWED"), (r"^sw\d{11}(ms)?xpc", "PHOTON")),
        frame_time=2.5073,
        pixel_arcsec=2.357,
        supported_modes=("PHOTON",),
    )
)
