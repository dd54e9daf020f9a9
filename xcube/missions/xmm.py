"""XMM-Newton EPIC pn and MOS1/2.

- PI is in eV (SAS ``evselect`` convention, XMM-SOC-CAL-TN-0018): E[keV] = PI / 1000.
- Sky X/Y are in 0.05 arcsec units (TCDLT = 1.3889e-5 deg).
- GTIs: one ``STDGTInn`` per CCD (``CCDID`` keyword or the nn digits); flare
  filtering adds per-CCD ``GTI0cc0n`` tables (with ``CCDID``).
- Default screening: pn ``PATTERN<=4 && FLAG==0``, MOS ``PATTERN<=12 && FLAG==0``
  (FLAG==0 is stricter than the ``#XMMEA_EP/EM`` sets, as in the transient search).
- Frame times: pn full frame 73.4 ms, MOS full frame 2.6 s (XMM Users Handbook 3.3.2).
"""
from . import register
from .base import MissionProfile, linear_energy

_COMMON = dict(
    mission="XMM-Newton",
    telescop=("XMM",),
    pi_to_kev=linear_energy(0.001),
    energy_note="PI in eV (XMM SAS convention): E = PI/1000 keV",
    pi_range=(0, 20479),
    energy_range=(0.15, 15.0),
    gti_extensions=("STDGTI*", "GTI0*", "GTI", "STDGTI"),
    pixel_arcsec=0.05,
    supported_modes=("IMAGING", "PRIME*", "FAST*", "FULL*", "LARGE*", "SMALL*", "EXTENDED*"),
)

PN = register(
    MissionProfile(
        name="xmm-pn",
        instrument="EPN",
        instrume=("EPN",),
        screening="PATTERN <= 4 && FLAG == 0",
        frame_time=0.0734,
        # pn quadrants: CCDs 1-3, 4-6, 7-9, 10-12
        quadrants={c: (c - 1) // 3 for c in range(1, 13)},
        **{**_COMMON, "supported_modes": ("IMAGING", "PRIME*", "FULL*", "LARGE*", "SMALL*", "EXTENDED*")},
    )
)
MOS1 = register(
    MissionProfile(
        name="xmm-mos1",
        instrument="EMOS1",
        instrume=("EMOS1",),
        screening="PATTERN <= 12 && FLAG == 0",
        frame_time=2.6,
        **_COMMON,
    )
)
MOS2 = register(
    MissionProfile(
        name="xmm-mos2",
        instrument="EMOS2",
        instrume=("EMOS2",),
        screening="PATTERN <= 12 && FLAG == 0",
        frame_time=2.6,
        **_COMMON,
    )
)
