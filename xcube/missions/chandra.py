"""Chandra ACIS and HRC (level-2 event files, ``evt2``).

- Columns are lower case (``time``, ``ccd_id``, ``x``, ``y``, ``pi``,
  ``energy``, ``grade``, ...); column lookup is case-insensitive. The file's
  own ``energy`` column (eV, from the gain tables) is kept as ``energy_ev``;
  ``energy`` [keV] is computed from PI like every other mission.
- ACIS PI: CIAO defines ``PI = int(energy / 14.6 eV) + 1`` (CIAO dictionary,
  "PI: Pulse Invariant", cxc.cfa.harvard.edu/ciao/dictionary/pi.html), so
  channel PI covers ``[(PI-1), PI) * 14.6 eV`` and xcube uses its lower edge,
  E[keV] = 0.0146 * (PI - 1), channels 1-1024.
- HRC has no useful energy resolution (its PI is a gain-corrected pulse
  amplitude, not an energy scale; Chandra Proposers' Observatory Guide (POG)
  ch. 7), so ``energy`` is NaN there; select on ``pi`` if needed.
- GTIs: one ``GTI`` extension per active ACIS chip with a ``CCD_ID`` keyword
  (per-CCD GTIs); HRC files have a single ``GTI``.
- Frame time: ACIS timed-exposure full frame 3.2 s nominal (3.24104 s with
  the transfer time; POG sect. 6.12); continuous-clocking (``CC33_*``) modes
  are not imaging and are not accepted by imaging analyses. HRC is event by
  event (frame time 0, ~16 us resolution).
- Sky pixels: ACIS 0.492 arcsec, HRC 0.13175 arcsec (POG tables 6.1 and 7.1;
  the ``TCDLT`` of ``x``/``y`` in evt2 files).
- Time: seconds since MJDREF = 50814.0 (1998-01-01 TT), TIMESYS = TT.
"""
from . import register
from .base import MissionProfile, linear_energy

_COLUMNS = {"time": "time", "x": "x", "y": "y", "pi": "pi", "energy_ev": "energy"}

ACIS = register(
    MissionProfile(
        name="chandra-acis",
        mission="Chandra",
        instrument="ACIS",
        telescop=("CHANDRA",),
        instrume=("ACIS", "ACIS-*"),
        columns=_COLUMNS,
        pi_to_kev=linear_energy(0.0146, -0.0146),
        energy_note="PI = int(E/14.6 eV) + 1 (CIAO dictionary): E = 0.0146*(PI-1) keV, the channel's lower edge",
        pi_range=(1, 1024),
        energy_range=(0.3, 10.0),
        gti_extensions=("GTI",),
        gti_ccd_keywords=("CCD_ID", "CCDID"),
        gti_ccd_pattern=None,
        ccd_column="ccd_id",  # a region's products use its chips' own GTIs (GTI7 ...) and live times
        ccd_livetime_keywords=("LIVTIME{}", "ONTIME{}"),  # evt2 EVENTS header, per ACIS chip [s]
        screening=None,  # evt2 files are already grade/status filtered
        frame_time=3.24104,
        pixel_arcsec=0.492,
        supported_modes=("FAINT", "VFAINT", "GRADED"),
    )
)

HRC = register(
    MissionProfile(
        name="chandra-hrc",
        mission="Chandra",
        instrument="HRC",
        telescop=("CHANDRA",),
        instrume=("HRC", "HRC-*"),
        columns=_COLUMNS,
        pi_to_kev=None,
        energy_note="HRC has no PI-to-energy conversion: no useful energy resolution, POG ch. 7",
        pi_range=(0, 255),
        energy_range=(0.08, 10.0),
        gti_extensions=("GTI",),
        gti_ccd_keywords=("CCD_ID",),
        gti_ccd_pattern=None,
        screening=None,
        frame_time=0.0,
        pixel_arcsec=0.13175,
    )
)
