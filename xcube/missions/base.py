"""The mission profile: everything xcube knows about one mission's event files.

A profile is plain data plus a PI-to-energy conversion. Code outside
``xcube.missions`` asks the profile; it never tests the mission name.
"""
from __future__ import annotations

import fnmatch
import os
import re
import warnings
from dataclasses import dataclass, field
from typing import Callable, Mapping

import numpy as np

__all__ = ["MissionProfile", "linear_energy"]


def linear_energy(kev_per_channel: float, offset_kev: float = 0.0) -> Callable[[np.ndarray], np.ndarray]:
    """Return ``f(pi) = offset_kev + kev_per_channel * pi`` in keV (float32).

    ``kev_per_channel`` [keV per PI channel], ``offset_kev`` [keV]. ``f``
    takes PI channels of any shape and returns a float32 numpy array of the
    same shape (computed in float64, then rounded). Eager: ``f`` converts
    its input with ``np.asarray`` (a Dask array would be computed)."""

    def pi_to_kev(pi):
        return (offset_kev + kev_per_channel * np.asarray(pi, dtype=np.float64)).astype(np.float32)

    pi_to_kev.kev_per_channel = kev_per_channel
    pi_to_kev.offset_kev = offset_kev
    return pi_to_kev


@dataclass(frozen=True)
class MissionProfile:
    """Knowledge of one mission/instrument's event files.

    Attributes
    ----------
    name : registry key, e.g. ``"xmm-mos1"``.
    mission, instrument : values for the ``mission``/``instrument`` attrs.
    telescop : TELESCOP header values (upper case) this profile accepts.
    instrume : ``fnmatch`` patterns of INSTRUME (upper case) this profile accepts.
    columns : canonical name -> file column name for the renamed columns
        (``time``, ``x``, ``y``, ``pi``). Lookup is case-insensitive; every
        other scalar column keeps its lower-case file name.
    pi_to_kev : vectorised PI -> energy [keV] conversion, or ``None`` where the
        detector has no linear conversion (``energy`` is then NaN).
    energy_note : where the conversion comes from, or why there is none.
    pi_range : (min, max) valid PI channels, inclusive.
    energy_range : (min, max) keV of the instrument's useful band.
    events_extension : name of the event table extension, or a tuple of
        accepted names (RXTE science event files use ``XTE_SE``).
    gti_extensions : ``fnmatch`` patterns of GTI extension names, in priority order.
    gti_columns : (start, stop) column names of the GTI tables (case-insensitive,
        so RXTE's ``Start``/``Stop`` match too).
    gti_ccd_keywords : header keywords of a GTI extension naming its CCD
        (XMM ``CCDID``, Chandra ``CCD_ID``).
    gti_ccd_pattern : regular expression on the upper-case extension name whose
        first group is the CCD number (XMM ``STDGTInn``, eROSITA ``GTIn``), or None.
    screening : default screening filter expression (``xcube.select`` syntax) or None.
        Callers ask :meth:`screening_for` (or :func:`xcube.missions.screening_of`),
        which applies ``mode_screening``.
    mode_screening : ``(mode pattern, expression or None)`` pairs: the screening
        of the data modes whose DATAMODE (or SUBMODE) matches the ``fnmatch``
        pattern (upper case); first match wins, other modes get ``screening``
        (Swift XRT: ``WINDOWED`` -> ``GRADE <= 2``).
    mode_file_names : ``(regular expression, DATAMODE)`` pairs giving the data
        mode of a file whose header has no DATAMODE from its file name
        (searched, lower case; Swift XRT ``sw<obsid>xwt...`` -> ``WINDOWED``).
    frame_time : CCD frame time [s] (0 for non-imaging / event-by-event detectors).
    pixel_arcsec : size of one sky pixel (X/Y columns) [arcsec], used when the
        header has no TCDLT keyword.
    image_arcsec : default pixel of ``xcube.image`` / ``xcube image`` [arcsec]
        (XMM EPIC and eROSITA 4", the usual binning of their 0.05" sky pixels),
        or None for one sky pixel.
    lc_rate_corrected : the mission's light-curve tool writes RATE already
        divided by FRACEXP whatever FRACCORR/DEADAPP say (eSASS ``srctool``);
        else those keywords decide (SAS ``evselect`` RATE = counts / TIMEDEL).
    quadrants : mapping CCD number -> quadrant, for the partial-CCD frame rule
        (empty where not applicable).
    empty_frames_bad : every frame with no event is a bad frame of the
        transient search (XMM EPIC: the reference's rule; a whole EPIC field
        always has background events, so an empty frame means a camera that
        was not exposing). False elsewhere: an empty frame is bad only where
        so few events are improbable (:func:`xcube.transients.frames.bad_frames`),
        since sparse data (NuSTAR, Chandra, short frames) have empty frames
        that are good time.
    supported_modes : ``fnmatch`` patterns of DATAMODE/SUBMODE values the
        transient search accepts (empty = all).
    spectral_grid : ``(first PI, last PI, PI per channel)`` of the channel grid
        the mission's standard response matrices expect (XMM SAS
        ``specchannelmin``/``specchannelmax``/``spectralbinsize``: pn
        ``(0, 20479, 5)``, MOS ``(0, 11999, 15)``), or None where spectra use
        one channel per PI value over ``pi_range``.
    raw_columns : ``(ccd, rawx, rawy)`` event columns of the detector pixel
        (the detector hygiene of :mod:`xcube.hygiene`), or None.
    ccd_column : event column of the CCD (chip) number where the profile has
        no ``raw_columns`` (Chandra ACIS ``ccd_id``): see :attr:`ccd_variable`.
    ccd_livetime_keywords : ``(live time, on time)`` event-header keywords of
        one CCD, ``str.format`` patterns of the CCD number (XMM EPIC
        ``("LIVETI{:02d}", "ONTIME{:02d}")``, [s]), or None. A spectrum's
        dead-time fraction is then the live/on time of the CCD holding most of
        its events (CCD number in the first of ``raw_columns``), not the
        file-wide DEADC or LIVETIME/ONTIME (:func:`xcube.spectrum`).
    raw_size : ``(n_rawx, n_rawy)`` pixels of one CCD (1-based raw coordinates).
    raw_rows : ``(submode pattern, first RAWY, last RAWY)`` rows read out per
        mode (first match wins; every row when none matches).
    border_margin : raw pixels dropped along every CCD border by the detector
        hygiene (0: none).
    bad_columns : ``(ccd, rawx)`` detector columns always dropped.
    roll_attr : the EventList attribute holding the roll (position angle
        [deg]) that turns sky offsets into the spacecraft frame, or None.
    cluster_rule : whether the detector hygiene looks for instrumental
        multi-event clusters by default (cameras with long frame times).
    packed_columns : event columns of a raw, undecoded event table (RXTE
        ``XTE_SE`` files: the bit-packed ``Event`` word): a table with one of
        them and without the channel column (``columns["pi"]``) is refused at
        open (:meth:`check_table`), ``decode_note`` telling how to decode it.
    decode_note : how to decode such a file (the tools and where they are
        described).
    """

    name: str
    mission: str
    instrument: str
    telescop: tuple[str, ...]
    instrume: tuple[str, ...]
    columns: Mapping[str, str] = field(default_factory=lambda: {"time": "TIME", "x": "X", "y": "Y", "pi": "PI"})
    pi_to_kev: Callable[[np.ndarray], np.ndarray] | None = None
    energy_note: str = ""
    pi_range: tuple[int, int] = (0, 4095)
    energy_range: tuple[float, float] = (0.1, 12.0)
    events_extension: str | tuple[str, ...] = "EVENTS"
    gti_extensions: tuple[str, ...] = ("GTI", "STDGTI*")
    gti_columns: tuple[str, str] = ("START", "STOP")
    gti_ccd_keywords: tuple[str, ...] = ("CCDID", "CCD_ID")
    gti_ccd_pattern: str | None = r"STDGTI(\d+)"
    screening: str | None = None
    mode_screening: tuple[tuple[str, str | None], ...] = ()
    mode_file_names: tuple[tuple[str, str], ...] = ()
    frame_time: float = 0.0
    pixel_arcsec: float = 1.0
    image_arcsec: float | None = None
    lc_rate_corrected: bool = False
    quadrants: Mapping[int, int] = field(default_factory=dict)
    empty_frames_bad: bool = False
    supported_modes: tuple[str, ...] = ()
    spectral_grid: tuple[int, int, int] | None = None
    raw_columns: tuple[str, str, str] | None = None
    ccd_column: str | None = None
    ccd_livetime_keywords: tuple[str, str] | None = None
    raw_size: tuple[int, int] = (0, 0)
    raw_rows: tuple[tuple[str, int, int], ...] = ()
    border_margin: int = 0
    bad_columns: tuple[tuple[int, int], ...] = ()
    roll_attr: str | None = None
    cluster_rule: bool = False
    packed_columns: tuple[str, ...] = ()
    decode_note: str = ""

    @property
    def ccd_variable(self) -> str | None:
        """The event variable holding the CCD (chip) number: ``ccd_column``,
        else the first of ``raw_columns``, else None. Products of a region
        take the good time and live time of the CCDs holding its events."""
        return self.ccd_column or (self.raw_columns[0] if self.raw_columns else None)

    def matches(self, telescop: str, instrume: str) -> bool:
        """True when TELESCOP/INSTRUME header values belong to this profile."""
        t = (telescop or "").strip().upper()
        i = (instrume or "").strip().upper()
        return t in self.telescop and any(fnmatch.fnmatchcase(i, p) for p in self.instrume)

    @property
    def events_extensions(self) -> tuple[str, ...]:
        """Accepted event-table extension names (upper case)."""
        ext = self.events_extension
        return tuple(e.upper() for e in ((ext,) if isinstance(ext, str) else ext))

    @property
    def has_sky(self) -> bool:
        """True when the mission's event files have sky X/Y columns."""
        return "x" in self.columns and "y" in self.columns

    @property
    def channel_type(self) -> str:
        """OGIP CHANTYPE of the channel column exposed as ``pi``: ``"PHA"``
        where the file's column is PHA (RXTE PCA), else ``"PI"``."""
        return "PHA" if str(self.columns.get("pi", "PI")).upper() == "PHA" else "PI"

    def is_gti_extension(self, extname: str) -> bool:
        """True when an extension name is one of this mission's GTI tables."""
        return any(fnmatch.fnmatchcase(extname.upper(), p) for p in self.gti_extensions)

    def energy(self, pi):
        """PI channel -> energy [keV], float32; NaN everywhere when not convertible."""
        if self.pi_to_kev is None:
            return np.full(np.shape(pi), np.nan, dtype=np.float32)
        return self.pi_to_kev(pi)

    def pi_for_energy(self, kev):
        """Energy [keV] -> (float) PI channel; inverse of a linear ``pi_to_kev``."""
        f = self.pi_to_kev
        if f is None or not hasattr(f, "kev_per_channel"):
            raise ValueError(
                f"{self.mission} {self.instrument}: no linear PI-energy conversion ({self.energy_note}); "
                "select on the PI channel column instead"
            )
        return (np.asarray(kev, dtype=np.float64) - f.offset_kev) / f.kev_per_channel

    def ccd_of_gti_extension(self, extname: str, header) -> int | None:
        """CCD number a GTI extension belongs to (one of ``gti_ccd_keywords``,
        or the digits matched by ``gti_ccd_pattern``), or None for an
        observation-wide GTI. ``ValueError`` naming the extension and the
        keyword when its value is not a whole number."""
        for key in self.gti_ccd_keywords:
            value = header.get(key)
            if value is not None:
                try:
                    number = float(value)
                except (TypeError, ValueError):
                    number = float("nan")
                if isinstance(value, bool) or not number.is_integer():
                    raise ValueError(f"GTI extension {extname}: {key} = {value!r} is not a CCD number")
                return int(number)
        if self.gti_ccd_pattern:
            m = re.fullmatch(self.gti_ccd_pattern, extname.upper())
            if m:
                return int(m.group(1))
        return None

    def raw_window(self, submode: str | None) -> tuple[int, int, int, int]:
        """``(rawx_min, rawx_max, rawy_min, rawy_max)`` (inclusive) of the
        pixels read out in ``submode`` (:attr:`raw_rows`), before any border
        margin. ``ValueError`` when the profile has no raw geometry."""
        if not self.raw_columns:
            raise ValueError(f"profile {self.name}: no raw detector coordinates (raw_columns)")
        nx, ny = self.raw_size
        y0, y1 = 1, ny
        for pattern, a, b in self.raw_rows:
            if submode and fnmatch.fnmatchcase(str(submode).upper(), pattern.upper()):
                y0, y1 = a, b
                break
        return 1, nx, y0, y1

    def check_table(self, header, path: str = "<header>") -> None:
        """``ValueError`` naming the file when the event table whose header
        (``TTYPEn`` keywords) is ``header`` is raw, undecoded data: it has one
        of :attr:`packed_columns` and no channel column (RXTE PCA GoodXenon or
        event-mode ``XTE_SE`` tables with their bit-packed ``Event`` word,
        whose rows include time markers and carry no decoded PHA). Every row
        would count as an event. Eager (header keywords only)."""
        if not self.packed_columns:
            return
        names = {str(v).strip().upper(): str(k)[5:] for k, v in header.items() if re.fullmatch(r"TTYPE\d+", str(k))}
        channel = str(self.columns.get("pi", "PI")).upper()
        packed = [c for c in self.packed_columns if c.upper() in names]
        if not packed or channel in names:
            return
        n = names[packed[0].upper()]
        form = header.get(f"TFORM{n}")
        mode = header.get("DATAMODE")
        raise ValueError(
            f"{path}: raw {self.mission} {self.instrument} science-event data"
            + (f" (DATAMODE = {mode!r})" if mode else "") + f" in {header.get('EXTNAME', 'the event table')}: a "
            f"bit-packed {str(header.get(f'TTYPE{n}')).strip()!r} column" + (f" (TFORM{n} = {form!r})" if form else "")
            + f" and no {channel!r} column; its rows are undecoded event words (some are time markers, not "
            f"photons), so it cannot be read as an event list. Decode it first: {self.decode_note}")

    def data_mode(self, attrs=None) -> str | None:
        """The DATAMODE of an event list's ``attrs`` (upper case), else the one
        its source file name gives (:attr:`mode_file_names`), else None."""
        attrs = attrs or {}
        mode = attrs.get("datamode")
        if mode and str(mode).strip():
            return str(mode).strip().upper()
        name = os.path.basename(str(attrs.get("source") or "")).lower()
        for pattern, value in self.mode_file_names if name else ():
            if re.search(pattern, name):
                return value.upper()
        return None

    def screening_for(self, attrs=None) -> str | None:
        """The default screening expression of events with ``attrs`` (their
        data mode, :meth:`data_mode`, and SUBMODE pick a
        :attr:`mode_screening` entry: :meth:`modes`; else :attr:`screening`).
        The one place every caller gets the screening from."""
        modes = self.modes(attrs)
        for pattern, expression in self.mode_screening:
            if any(fnmatch.fnmatchcase(m, pattern.upper()) for m in modes):
                return expression
        return self.screening

    def modes(self, attrs=None) -> tuple[str, ...]:
        """The instrument modes of events with ``attrs``, upper case: their data
        mode (:meth:`data_mode`: DATAMODE, else the file name's mode code) and
        SUBMODE, those known (empty when neither is). The one notion of a
        file's mode: the screening (:meth:`screening_for`) and the imaging-mode
        check (:meth:`accepts_mode`) both use it. Eager (attrs only)."""
        attrs = attrs or {}
        return tuple(m for m in (self.data_mode(attrs), str(attrs.get("submode") or "").strip().upper()) if m)

    def accepts_mode(self, attrs=None) -> bool:
        """True when the instrument mode of events with ``attrs`` (their
        :meth:`modes`: the mode the screening uses, so a Swift XRT file
        without DATAMODE named ``sw<obsid>xwt...`` is WINDOWED here too) is
        supported by imaging analyses: every mode matches one of
        :attr:`supported_modes` (any mode when that is empty). No known mode
        at all, where the profile names its imaging modes, is accepted as
        imaging (Swift XRT: PC, as its screening) with a ``UserWarning``
        naming the file and the modes it should have. Eager (attrs only)."""
        attrs = attrs or {}
        vals = list(self.modes(attrs))
        if not self.supported_modes:
            return True
        if not vals:
            warnings.warn(
                f"{attrs.get('source') or 'events'}: {self.mission} {self.instrument} file of unknown mode (no "
                "DATAMODE keyword" + (", and no mode code in its file name" if self.mode_file_names else "")
                + f"); taken as an imaging mode ({', '.join(self.supported_modes)}). If it is a timing mode, "
                "imaging results are wrong: set DATAMODE (fparkey <mode> 'file[EVENTS]' DATAMODE add=yes)",
                UserWarning, stacklevel=3)
            return True
        return all(any(fnmatch.fnmatchcase(v, p.upper()) for p in self.supported_modes) for v in vals)
