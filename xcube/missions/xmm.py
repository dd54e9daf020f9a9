"""XMM-Newton EPIC pn and MOS1/2.

- PI is in eV (SAS ``evselect`` convention, XMM-SOC-CAL-TN-0018): E[keV] = PI / 1000.
- Sky X/Y are in 0.05 arcsec units (TCDLT = 1.3889e-5 deg).
- GTIs: one ``STDGTInn`` per CCD (``CCDID`` keyword or the nn digits); flare
  filtering adds per-CCD ``GTI0cc0n`` tables (with ``CCDID``).
- Default screening: pn ``PATTERN<=4 && FLAG==0``, MOS ``PATTERN<=12 && FLAG==0``
  (FLAG==0 is stricter than the ``#XMMEA_EP/EM`` sets, as in the transient search).
- Dead time: the EPIC EVENTS header gives every CCD's live time and on time
  (``LIVETInn``, ``ONTIMEnn`` [s]; LIVETIME/ONTIME are the central CCD's); a
  spectrum's EXPOSURE is its CCD's good time scaled by LIVETInn/ONTIMEnn of
  the CCD holding most of its events (``ccd_livetime_keywords``).
- Frame times: pn full frame 73.4 ms, MOS full frame 2.6 s (XMM Users Handbook 3.3.2).
- Spectral channel grids of the standard responses (SAS threads "pn/MOS spectrum
  and response files"; ``evselect specchannelmin specchannelmax spectralbinsize``):
  pn PI 0-20479 in channels of 5 PI (4096 channels), MOS PI 0-11999 in channels
  of 15 PI (800 channels).
- PI ranges (``pi_range``, the valid PI values): pn 0-20479; MOS 0-15000, the
  TLMIN/TLMAX of the MOS event files' PI column (their events reach PI 14281). The
  MOS spectral grid stops at 11999 (the RMFs'); the energy binning treats PI
  beyond ``pi_range`` as out of range, so MOS keeps the file's 15000 there.
- RGS1/RGS2: dispersed spectra; the filtered event lists (``rgsproc`` stage
  ``filter``, ``*EVENLI*``) have no sky X/Y but ``BETA_CORR``/``XDSP_CORR``
  (dispersion and cross-dispersion angles), a ``PI`` column in eV from the CCD
  energy (used for order selection) and one ``STDGTInn`` per CCD (nine CCDs).
- Raw detector pixels (the detector hygiene, :mod:`xcube.hygiene`): pn CCDs
  of 64 x 200 pixels of 4.1", MOS CCDs of 600 x 600 pixels of 1.1" (XMM
  Users Handbook 3.3.2). pn rows read out per mode: full frame (and extended)
  RAWY 13-200, large window 102-200, small window 137-200; the pn border margin
  (3 pixels) and the three bad pn columns (CCD 4 RAWX 12, CCD 5 RAWX 11, CCD 10
  RAWX 28; Strueder et al. 2001, A&A 365, L18) are the ones the EXOD search
  removes (its event-list reader, ``exod/xmm/event_list.py``). MOS borders are
  kept, as EXOD keeps them. The instrumental-cluster rule is on by default
  for MOS (2.6 s frames; a 3-event cluster within 1.4 s on adjacent RAWX is
  in the MOS1 file of 0001730201) and off for pn (73 ms frames).
- Spacecraft frame: sky offsets rotated by ``PA_PNT`` give MOS1 (-DETX, DETY)
  (checked on the real MOS files of observations 0001730201 and 0201901401).
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
    image_arcsec=4.0,
    supported_modes=("IMAGING", "PRIME*", "FAST*", "FULL*", "LARGE*", "SMALL*", "EXTENDED*"),
    raw_columns=("ccdnr", "rawx", "rawy"),
    ccd_livetime_keywords=("LIVETI{:02d}", "ONTIME{:02d}"),  # EVENTS header, per CCD [s]
    roll_attr="pa_pnt",
    empty_frames_bad=True,  # the reference's rule (transient-search.md section 6)
)

# MOS PI (eV) runs 0-15000 (TLMAX of PI in the MOS event files), not pn's 0-20479
_MOS_PI_RANGE = (0, 15000)

PN = register(
    MissionProfile(
        name="xmm-pn",
        instrument="EPN",
        instrume=("EPN",),
        screening="PATTERN <= 4 && FLAG == 0",
        frame_time=0.0734,
        # pn quadrants: CCDs 1-3, 4-6, 7-9, 10-12
        quadrants={c: (c - 1) // 3 for c in range(1, 13)},
        spectral_grid=(0, 20479, 5),
        raw_size=(64, 200),
        raw_rows=(("PrimeFullWindow*", 13, 200), ("FullFrame*", 13, 200), ("PrimeLargeWindow", 102, 200),
                  ("PrimeSmallWindow", 137, 200)),
        border_margin=3,
        bad_columns=((4, 12), (5, 11), (10, 28)),
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
        spectral_grid=(0, 11999, 15),
        raw_size=(600, 600),
        cluster_rule=True,
        **{**_COMMON, "pi_range": _MOS_PI_RANGE},
    )
)
MOS2 = register(
    MissionProfile(
        name="xmm-mos2",
        instrument="EMOS2",
        instrume=("EMOS2",),
        screening="PATTERN <= 12 && FLAG == 0",
        frame_time=2.6,
        spectral_grid=(0, 11999, 15),
        raw_size=(600, 600),
        cluster_rule=True,
        **{**_COMMON, "pi_range": _MOS_PI_RANGE},
    )
)


def _rgs(n: int) -> MissionProfile:
    return register(
        MissionProfile(
            name=f"xmm-rgs{n}",
            mission="XMM-Newton",
            instrument=f"RGS{n}",
            telescop=("XMM",),
            instrume=(f"RGS{n}",),
            columns={"time": "TIME", "pi": "PI"},
            pi_to_kev=linear_energy(0.001),
            energy_note="PI in eV from the CCD energy (order selection), not the dispersed energy",
            pi_range=(0, 20479),
            energy_range=(0.33, 2.5),
            gti_extensions=("STDGTI*", "GTI"),
            frame_time=4.8,
            pixel_arcsec=0.0,
            supported_modes=("SPECTROSCOPY*", "SPECTRO*"),
        )
    )


RGS1 = _rgs(1)
RGS2 = _rgs(2)
