"""Encoders and decoders: how real values become input spikes and output spikes become answers.

A trained network is only usable with the code that feeds it and reads it, so spikeforge stores
that code's parameters *in the network* (``network.metadata["io"]``); whoever deploys the
network (the CLI, the robot loop, a board) rebuilds the same encoder and decoder from it.

Encoders map one sample of ``n_values`` real values to input events
``(input_index, time, value)`` over a window of ``steps`` timesteps:

=================  ========  ===========================================================
kind               inputs    code
=================  ========  ===========================================================
``rate``           n         ``round(x̂ · max_spikes)`` spikes, evenly spread over the window
``flip_flop``      2·n       TENNLab's cart-pole code: the value's sign picks the input
                             (``+`` first, ``−`` second), its magnitude is rate coded
``rate_phased``    n         as ``rate``, the ``k``-th spike at ``⌊(k + phase) · steps / count⌋``:
                             ``phase = 0.5`` centres the spikes, so inputs do not all fire
                             together at t = 0 (what ANN-to-SNN conversion wants)
``ttfs``           n         one spike at ``round((1 − x̂) · (steps − 1))``: larger is earlier
``bins``           n·bins    the bin holding the value gets ``spikes`` spikes (one-hot)
``series``         c·(1|2)   a time series ``[frames, c]``, one frame per ``frame_steps``
                   + extra   steps, aligned to end at ``frames · frame_steps``; ``current``:
                             ``round(x̂ · value)`` on every step of the frame (an IF relay of
                             threshold ``value`` turns it into a rate), ``rate``:
                             ``round(x̂ · frame_steps)`` spikes of ``value``; ``push_pull``
                             adds a second input per channel coding ``1 − x̂``; ``markers``
                             are fixed events added to every sample
=================  ========  ===========================================================

``x̂`` is the value scaled from ``[lo, hi]`` to ``[0, 1]`` and clipped. For ``flip_flop`` the
centre ``(lo + hi) / 2`` is zero and the magnitude is scaled by ``(hi − lo) / 2``.

Decoders read the output raster ``[steps, n_outputs]`` (bool) of one sample:

==================  =====================================================================
kind                answer
==================  =====================================================================
``count``           per output ``lo + (hi − lo) · min(count, max_count) / max_count``
``wta``             class = output with most spikes; ties go to the earliest first spike,
                    then to the lowest index; no spike at all gives ``default`` (0)
``first_spike``     class = output that spikes first; ties go to the most spikes, then the
                    lowest index; no spike gives ``default`` (0)
==================  =====================================================================

Example
-------
>>> enc = RateEncoder(n_values=2, steps=10, max_spikes=5)
>>> enc.encode([1.0, 0.2])
[(0, 0, 1), (0, 2, 1), (0, 4, 1), (0, 6, 1), (0, 8, 1), (1, 0, 1)]
>>> WTADecoder(n_outputs=3).decode(np.array([[0, 1, 1], [0, 1, 0]], dtype=bool))
1
"""

from __future__ import annotations

import math
from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import asdict, dataclass, fields
from typing import Any, ClassVar

import numpy as np
from numpy.typing import ArrayLike

from .ir import Network, NetworkError
from .reference import InputEvent, SimResult

__all__ = [
    "BinsEncoder",
    "CountDecoder",
    "Decoder",
    "Encoder",
    "FirstSpikeDecoder",
    "FlipFlopEncoder",
    "PhasedRateEncoder",
    "RateEncoder",
    "SeriesEncoder",
    "TTFSEncoder",
    "WTADecoder",
    "attach_io",
    "decoder_from_dict",
    "encoder_from_dict",
    "io_latency",
    "io_of",
    "output_raster",
]

IO_KEY = "io"


def _check_int(owner: str, name: str, v: Any, lo: int, hi: int | None = None) -> None:
    if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v < lo or (
        hi is not None and v > hi
    ):
        allowed = f"an integer >= {lo}" if hi is None else f"an integer in {lo}..{hi}"
        raise NetworkError(f"{owner}: {name} = {v!r} is invalid; allowed: {allowed}")


def _check_range(owner: str, lo: Any, hi: Any) -> None:
    ok = all(isinstance(x, (int, float)) and not isinstance(x, bool) and math.isfinite(x)
             for x in (lo, hi))
    if not ok or not lo < hi:
        raise NetworkError(f"{owner}: range lo = {lo!r}, hi = {hi!r} is invalid; need finite lo < hi")


def _spread_many(counts: np.ndarray, window: int) -> tuple[np.ndarray, np.ndarray]:
    """Evenly spaced spikes, the one definition of the rate code's timing: ``count`` spikes of
    an entry at ``⌊k · window / count⌋``, ``k = 0 … count − 1``.

    Returns ``(owner, time)``: for every spike, the flat index of its entry in ``counts`` and
    its time within the window.
    """
    c = counts.reshape(-1)
    owner = np.repeat(np.arange(c.size), c)
    k = np.arange(int(c.sum())) - np.repeat(np.cumsum(c) - c, c)
    return owner, (k * window) // np.maximum(c[owner], 1)


def _spread(count: int, steps: int) -> list[int]:
    """``count`` spike times evenly spread over ``steps`` steps, the first at 0 (:func:`_spread_many`)."""
    return _spread_many(np.array([count]), steps)[1].tolist()


def _spread_phased(count: int, steps: int, phase: float) -> list[int]:
    """``count`` spike times evenly spread over ``steps`` steps, the first at ``phase`` of a gap."""
    return [math.floor((k + phase) * steps / count) for k in range(count)]


class _Coded:
    """Shared (de)serialisation: a ``kind`` tag plus the dataclass fields."""

    kind: ClassVar[str]

    def to_dict(self) -> dict[str, Any]:
        """JSON-able form, ``{"kind": ..., <fields>}``."""
        return {"kind": self.kind, **asdict(self)}  # type: ignore[call-overload]

    @classmethod
    def _from(cls, doc: dict[str, Any], registry: dict[str, type], what: str) -> Any:
        if not isinstance(doc, dict) or "kind" not in doc:
            raise NetworkError(f"{what}: expected an object with a 'kind', got {doc!r}")
        kind = doc["kind"]
        if kind not in registry:
            raise NetworkError(f"{what}: unknown kind {kind!r}; known: {', '.join(sorted(registry))}")
        klass = registry[kind]
        names = {f.name for f in fields(klass)}
        extra = set(doc) - names - {"kind"}
        if extra:
            raise NetworkError(f"{what} {kind!r}: unknown field(s) {sorted(extra)}; allowed: {sorted(names)}")
        try:
            return klass(**{k: v for k, v in doc.items() if k != "kind"})
        except TypeError as e:
            raise NetworkError(f"{what} {kind!r}: {e}") from None


# ------------------------------------------------------------------------------ encoders
@dataclass(frozen=True)
class Encoder(_Coded, ABC):
    """Base class: ``n_values`` reals in ``[lo, hi]`` → input events over ``steps`` steps.

    Parameters
    ----------
    n_values
        Values per sample.
    steps
        Timesteps per sample (the encoding window; decoders read the same window).
    lo, hi
        Value range; values outside it are clipped.
    value
        Charge of one input event (the network's input neurons see this weight).
    """

    n_values: int
    steps: int
    lo: float = 0.0
    hi: float = 1.0
    value: int = 1

    def __post_init__(self) -> None:
        owner = f"{self.kind} encoder"
        _check_int(owner, "n_values", self.n_values, 1)
        _check_int(owner, "steps", self.steps, 1)
        _check_range(owner, self.lo, self.hi)
        _check_int(owner, "value", self.value, -(1 << 31), (1 << 31) - 1)

    @property
    @abstractmethod
    def n_inputs(self) -> int:
        """Number of network inputs this encoder drives."""

    def _scaled(self, x: ArrayLike) -> np.ndarray:
        a = np.asarray(x, dtype=float).reshape(-1)
        if a.shape[0] != self.n_values:
            raise ValueError(f"{self.kind} encoder: got {a.shape[0]} values, expected {self.n_values}")
        if not np.all(np.isfinite(a)):
            raise ValueError(f"{self.kind} encoder: non-finite value in {a.tolist()}")
        return self._unit(a)

    def _unit(self, a: np.ndarray) -> np.ndarray:
        """``a`` scaled from ``[lo, hi]`` to ``[0, 1]`` and clipped (the one scaling of every code)."""
        return np.clip((a - self.lo) / (self.hi - self.lo), 0.0, 1.0)

    @abstractmethod
    def encode(self, x: ArrayLike) -> list[InputEvent]:
        """Events of one sample, sorted by input then time.

        Parameters
        ----------
        x
            ``n_values`` reals.
        """

    def encode_batch(self, xs: ArrayLike) -> list[list[InputEvent]]:
        """One event list per row of ``xs`` (``[batch, n_values]``)."""
        return [self.encode(row) for row in np.asarray(xs, dtype=float).reshape(-1, self.n_values)]

    def encode_arrays(self, xs: ArrayLike) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """Events of many samples as arrays ``(sample, input_index, time, value)``.

        The same events as :meth:`encode_batch` (order may differ), for feeding a batch
        simulator without a Python loop per event; rate and flip-flop codes are vectorised.
        """
        rows = np.asarray(xs, dtype=float).reshape(-1, self.n_values)
        ev = [(k, i, t, v) for k, row in enumerate(rows) for i, t, v in self.encode(row)]
        a = np.array(ev, dtype=np.int64).reshape(-1, 4)
        return a[:, 0], a[:, 1], a[:, 2], a[:, 3]

    def shifted(self, events: Sequence[InputEvent], t0: int) -> list[InputEvent]:
        """``events`` moved to start at timestep ``t0`` (for back-to-back samples)."""
        return [(i, t + t0, v) for i, t, v in events]


@dataclass(frozen=True)
class RateEncoder(Encoder):
    """Rate code: ``round(x̂ · max_spikes)`` evenly spaced spikes (``max_spikes`` ≤ ``steps``)."""

    kind: ClassVar[str] = "rate"
    max_spikes: int = 0  # 0 means steps

    def __post_init__(self) -> None:
        super().__post_init__()
        _check_int("rate encoder", "max_spikes", self.max_spikes, 0, self.steps)

    @property
    def n_inputs(self) -> int:
        return self.n_values

    def _cap(self) -> int:
        return self.max_spikes or self.steps

    def encode(self, x: ArrayLike) -> list[InputEvent]:
        sample, inputs, times, values = self._events(self._scaled(x)[None, :])
        order = np.lexsort((times, inputs))
        return [(int(i), int(t), int(v)) for i, t, v in zip(inputs[order], times[order], values[order], strict=True)]

    def _counts_inputs(self, units: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Spike count and input index per (sample, value) of ``[batch, n_values]`` scaled rows."""
        return np.rint(units * self._cap()).astype(np.int64), np.broadcast_to(np.arange(self.n_values), units.shape)

    def _events(self, units: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """``(sample, input_index, time, value)`` arrays of scaled rows: ``count`` spikes of an
        input at ``⌊k · steps / count⌋``, ``k = 0 … count − 1`` (the one definition of the code)."""
        counts, inputs = self._counts_inputs(units)
        owner, times = _spread_many(counts, self.steps)
        sample = owner // self.n_values
        return (sample, inputs.reshape(-1)[owner].astype(np.int64), times.astype(np.int64),
                np.full(len(owner), self.value, dtype=np.int64))

    def encode_arrays(self, xs: ArrayLike) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        rows = np.asarray(xs, dtype=float).reshape(-1, self.n_values)
        if not np.all(np.isfinite(rows)):
            raise ValueError(f"{self.kind} encoder: non-finite value in the batch")
        return self._events(self._unit(rows))


@dataclass(frozen=True)
class FlipFlopEncoder(RateEncoder):
    """Signed rate code over two inputs per value (``+`` at ``2i``, ``−`` at ``2i + 1``)."""

    kind: ClassVar[str] = "flip_flop"

    @property
    def n_inputs(self) -> int:
        return 2 * self.n_values

    def _counts_inputs(self, units: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        s = units * 2.0 - 1.0  # [-1, 1], 0 at the centre of [lo, hi]
        counts = np.rint(np.abs(s) * self._cap()).astype(np.int64)
        return counts, 2 * np.arange(self.n_values) + (s < 0)


@dataclass(frozen=True)
class PhasedRateEncoder(Encoder):
    """Rate code with a phase: ``round(x̂ · max_spikes)`` spikes, the ``k``-th at
    ``⌊(k + phase) · steps / count⌋`` (``phase`` in ``[0, 1)``; 0 is :class:`RateEncoder`)."""

    kind: ClassVar[str] = "rate_phased"
    max_spikes: int = 0  # 0 means steps
    phase: float = 0.5

    def __post_init__(self) -> None:
        super().__post_init__()
        _check_int("rate_phased encoder", "max_spikes", self.max_spikes, 0, self.steps)
        ok = isinstance(self.phase, int | float) and not isinstance(self.phase, bool)
        if not ok or not 0.0 <= self.phase < 1.0:
            raise NetworkError(f"rate_phased encoder: phase = {self.phase!r} is invalid; allowed: 0 <= phase < 1")

    @property
    def n_inputs(self) -> int:
        return self.n_values

    def encode(self, x: ArrayLike) -> list[InputEvent]:
        counts = np.rint(self._scaled(x) * (self.max_spikes or self.steps)).astype(int)
        return [(i, t, self.value) for i, c in enumerate(counts)
                for t in _spread_phased(int(c), self.steps, self.phase)]


@dataclass(frozen=True)
class TTFSEncoder(Encoder):
    """Time to first spike: one spike per value at ``round((1 − x̂)(steps − 1))``."""

    kind: ClassVar[str] = "ttfs"

    @property
    def n_inputs(self) -> int:
        return self.n_values

    def encode(self, x: ArrayLike) -> list[InputEvent]:
        times = np.rint((1.0 - self._scaled(x)) * (self.steps - 1)).astype(int)
        return [(i, int(t), self.value) for i, t in enumerate(times)]


@dataclass(frozen=True)
class BinsEncoder(Encoder):
    """One-hot bins: value ``i`` drives input ``i·bins + b`` (``b`` its bin) with ``spikes`` spikes."""

    kind: ClassVar[str] = "bins"
    bins: int = 4
    spikes: int = 1

    def __post_init__(self) -> None:
        super().__post_init__()
        _check_int("bins encoder", "bins", self.bins, 1)
        _check_int("bins encoder", "spikes", self.spikes, 1, self.steps)

    @property
    def n_inputs(self) -> int:
        return self.n_values * self.bins

    def encode(self, x: ArrayLike) -> list[InputEvent]:
        b = np.minimum((self._scaled(x) * self.bins).astype(int), self.bins - 1)
        times = _spread(self.spikes, self.steps)
        return [(i * self.bins + int(k), t, self.value) for i, k in enumerate(b) for t in times]


@dataclass(frozen=True)
class SeriesEncoder(Encoder):
    """A multivariate time series, one frame of ``channels`` values per ``frame_steps`` steps.

    A sample is ``frames × channels`` values, row-major (``[frames, channels]`` flattened);
    rows that are all NaN are padding. The real rows (shorter series are padded at the front)
    are placed so that the last one ends at step ``frames · frame_steps``; ``steps`` may be
    longer (a readout's decision phase). Channel ``c`` drives input ``c`` (and, with
    ``push_pull``, input ``channels + c`` with ``1 − x̂``); inputs from ``channels · (1 +
    push_pull)`` on are ``extra_inputs`` that only ``markers`` drive.

    Parameters
    ----------
    channels, frames, frame_steps
        Series width, longest series, steps per frame.
    mode
        ``"current"``: input value ``round(x̂ · value)`` on every step of the frame (zero
        values are not sent); ``"rate"``: ``round(x̂ · frame_steps)`` events of ``value`` spread
        over the frame.
    push_pull
        Also code ``1 − x̂`` on a second input per channel.
    extra_inputs
        Inputs after the channel inputs (driven by markers only).
    markers
        ``[[input, time, value], …]`` added to every sample.
    """

    kind: ClassVar[str] = "series"
    channels: int = 1
    frames: int = 1
    frame_steps: int = 1
    mode: str = "current"
    push_pull: bool = False
    extra_inputs: int = 0
    markers: tuple[tuple[int, int, int], ...] = ()

    def __post_init__(self) -> None:
        super().__post_init__()
        owner = "series encoder"
        _check_int(owner, "channels", self.channels, 1)
        _check_int(owner, "frames", self.frames, 1)
        _check_int(owner, "frame_steps", self.frame_steps, 1)
        _check_int(owner, "extra_inputs", self.extra_inputs, 0)
        if self.n_values != self.channels * self.frames:
            raise NetworkError(f"series encoder: n_values = {self.n_values} but channels × frames = "
                               f"{self.channels * self.frames}; set n_values = channels * frames")
        if self.steps < self.frames * self.frame_steps:
            raise NetworkError(f"series encoder: steps = {self.steps} is shorter than frames × frame_steps = "
                               f"{self.frames * self.frame_steps}; allowed: steps >= that")
        if self.mode not in ("current", "rate"):
            raise NetworkError(f"series encoder: mode = {self.mode!r} is invalid; allowed: 'current', 'rate'")
        if not isinstance(self.push_pull, bool):
            raise NetworkError(f"series encoder: push_pull = {self.push_pull!r} is invalid; allowed: true, false")
        marks = tuple(tuple(int(v) for v in m) for m in self.markers)
        object.__setattr__(self, "markers", marks)
        for m in marks:
            if len(m) != 3 or not 0 <= m[0] < self.n_inputs or not 0 <= m[1] < self.steps:
                raise NetworkError(f"series encoder: marker {list(m)} is invalid; allowed: [input 0.."
                                   f"{self.n_inputs - 1}, time 0..{self.steps - 1}, value]")

    def to_dict(self) -> dict[str, Any]:
        d = super().to_dict()
        d["markers"] = [list(m) for m in self.markers]
        return d

    @property
    def n_inputs(self) -> int:
        return self.channels * (2 if self.push_pull else 1) + self.extra_inputs

    def encode(self, x: ArrayLike) -> list[InputEvent]:
        _, i, t, v = self.encode_arrays(np.asarray(x, dtype=float).reshape(1, -1))
        order = np.lexsort((t, i))
        return [(int(a), int(b), int(c)) for a, b, c in zip(i[order], t[order], v[order], strict=True)]

    def encode_arrays(self, xs: ArrayLike) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        rows = np.asarray(xs, dtype=float).reshape(-1, self.frames, self.channels)
        pad = np.isnan(rows).all(axis=2)
        if np.isnan(rows[~pad]).any() or np.isinf(rows).any():
            raise ValueError("series encoder: a frame holds NaN or inf next to numbers; a padding frame "
                             "must be all NaN")
        # shift each series to end at the last frame (padding first)
        length = (~pad).sum(axis=1)
        order = np.argsort(~pad, axis=1, kind="stable")  # padding rows first, real rows in order
        rows = np.take_along_axis(rows, order[:, :, None], axis=1)
        real = np.arange(self.frames)[None, :] >= (self.frames - length)[:, None]
        u = self._unit(np.nan_to_num(rows))
        units = [u, 1.0 - u] if self.push_pull else [u]
        fs = self.frame_steps
        out: list[tuple[np.ndarray, ...]] = []
        for half, uu in enumerate(units):
            if self.mode == "current":
                val = np.rint(uu * self.value).astype(np.int64)
                s, f, c = np.nonzero(real[:, :, None] & (val != 0))
                k = np.arange(fs)
                out.append((np.repeat(s, fs), np.repeat(c + half * self.channels, fs),
                            (f[:, None] * fs + k[None, :]).reshape(-1), np.repeat(val[s, f, c], fs)))
            else:
                cnt = np.where(real[:, :, None], np.rint(uu * fs).astype(np.int64), 0)
                s, f, c = np.nonzero(cnt)
                owner, offset = _spread_many(cnt[s, f, c], fs)  # the rate code's spacing, within a frame
                out.append((s[owner], c[owner] + half * self.channels, f[owner] * fs + offset,
                            np.full(len(owner), self.value, dtype=np.int64)))
        if self.markers:
            m = np.array(self.markers, dtype=np.int64)
            n_s = len(rows)
            out.append((np.repeat(np.arange(n_s), len(m)), np.tile(m[:, 0], n_s), np.tile(m[:, 1], n_s),
                        np.tile(m[:, 2], n_s)))
        return tuple(np.concatenate([o[k] for o in out]).astype(np.int64) for k in range(4))  # type: ignore[return-value]


_ENCODERS: dict[str, type] = {c.kind: c for c in (RateEncoder, FlipFlopEncoder, TTFSEncoder, BinsEncoder,
                                                  PhasedRateEncoder, SeriesEncoder)}


def encoder_from_dict(doc: dict[str, Any]) -> Encoder:
    """Rebuild an encoder from :meth:`Encoder.to_dict` output (raises NetworkError)."""
    return Encoder._from(doc, _ENCODERS, "encoder")


# ------------------------------------------------------------------------------ decoders
@dataclass(frozen=True)
class Decoder(_Coded, ABC):
    """Base class: the output raster of one sample → an answer.

    Parameters
    ----------
    n_outputs
        Number of network outputs read.
    """

    n_outputs: int

    def __post_init__(self) -> None:
        _check_int(f"{self.kind} decoder", "n_outputs", self.n_outputs, 1)

    def _raster(self, raster: ArrayLike) -> np.ndarray:
        r = np.asarray(raster, dtype=bool)
        if r.ndim != 2 or r.shape[1] != self.n_outputs:
            raise ValueError(
                f"{self.kind} decoder: raster shape {r.shape}, expected [steps, {self.n_outputs}]"
            )
        return r

    @abstractmethod
    def decode(self, raster: ArrayLike) -> Any:
        """Decode one ``[steps, n_outputs]`` bool raster."""

    def decode_batch(self, rasters: ArrayLike) -> np.ndarray:
        """Decode ``[batch, steps, n_outputs]`` rasters (one answer per row)."""
        return np.array([self.decode(r) for r in np.asarray(rasters, dtype=bool)])


@dataclass(frozen=True)
class CountDecoder(Decoder):
    """Spike count per output, scaled to ``[lo, hi]`` (``max_count`` spikes give ``hi``)."""

    kind: ClassVar[str] = "count"
    max_count: int = 1
    lo: float = 0.0
    hi: float = 1.0

    def __post_init__(self) -> None:
        super().__post_init__()
        _check_int("count decoder", "max_count", self.max_count, 1)
        _check_range("count decoder", self.lo, self.hi)

    def decode(self, raster: ArrayLike) -> np.ndarray:
        c = np.minimum(self._raster(raster).sum(axis=0), self.max_count)
        return self.lo + (self.hi - self.lo) * c / self.max_count

    def decode_batch(self, rasters: ArrayLike) -> np.ndarray:
        r = np.asarray(rasters, dtype=bool)
        c = np.minimum(r.sum(axis=1), self.max_count)
        return self.lo + (self.hi - self.lo) * c / self.max_count


def _first_times(r: np.ndarray) -> np.ndarray:
    """First spike time per output (``steps`` where an output never spikes)."""
    steps = r.shape[0]
    return np.where(r.any(axis=0), r.argmax(axis=0), steps)


@dataclass(frozen=True)
class _ClassDecoder(Decoder):
    """A class decoder: ranks outputs by spike count and first-spike time."""

    default: int = 0
    count_first: ClassVar[bool] = True

    def decode(self, raster: ArrayLike) -> int:
        return int(self.decode_batch(self._raster(raster)[None])[0])

    def decode_batch(self, rasters: ArrayLike) -> np.ndarray:
        """Vectorised :meth:`decode` of ``[batch, steps, n_outputs]`` rasters (same answers)."""
        r = np.asarray(rasters, dtype=bool)
        if r.ndim != 3 or r.shape[2] != self.n_outputs:
            raise ValueError(
                f"{self.kind} decoder: rasters shape {r.shape}, expected [batch, steps, {self.n_outputs}]"
            )
        steps, k = r.shape[1], self.n_outputs
        counts = r.sum(axis=1, dtype=np.int64)
        first = np.where(r.any(axis=1), r.argmax(axis=1), steps).astype(np.int64)
        # One integer key per output, smallest wins: primary, then secondary, then index.
        if self.count_first:
            primary, secondary, span = steps - counts, first, steps + 1
        else:
            primary, secondary, span = first, steps - counts, steps + 1
        key = (primary * span + secondary) * k + np.arange(k)
        win = key.argmin(axis=1)
        return np.where(counts.sum(axis=1) > 0, win, self.default)


@dataclass(frozen=True)
class WTADecoder(_ClassDecoder):
    """Winner takes all: most spikes; ties → earliest first spike → lowest index."""

    kind: ClassVar[str] = "wta"


@dataclass(frozen=True)
class FirstSpikeDecoder(_ClassDecoder):
    """Earliest first spike; ties → most spikes → lowest index."""

    kind: ClassVar[str] = "first_spike"
    count_first: ClassVar[bool] = False


_DECODERS: dict[str, type] = {c.kind: c for c in (CountDecoder, WTADecoder, FirstSpikeDecoder)}


def decoder_from_dict(doc: dict[str, Any]) -> Decoder:
    """Rebuild a decoder from :meth:`Decoder.to_dict` output (raises NetworkError)."""
    return Decoder._from(doc, _DECODERS, "decoder")


# ------------------------------------------------------------------------- network glue
def attach_io(net: Network, encoder: Encoder, decoder: Decoder, *, latency: int = 0) -> Network:
    """Record ``encoder`` and ``decoder`` in ``net.metadata["io"]`` (returns ``net``).

    ``latency`` is how many steps the outputs lag the inputs (e.g. one per layer of a
    feed-forward network with delay-1 synapses): a sample is run for ``encoder.steps +
    latency`` steps and the decoder reads that whole run (:func:`io_latency`).

    Raises
    ------
    NetworkError
        When the network's input/output port counts differ from what the codes drive/read.
    """
    if encoder.n_inputs != len(net.inputs):
        raise NetworkError(
            f"{encoder.kind} encoder drives {encoder.n_inputs} inputs but the network has "
            f"{len(net.inputs)}; add or remove input ports"
        )
    if decoder.n_outputs != len(net.outputs):
        raise NetworkError(
            f"{decoder.kind} decoder reads {decoder.n_outputs} outputs but the network has "
            f"{len(net.outputs)}; add or remove output ports"
        )
    _check_int("attach_io", "latency", latency, 0)
    net.metadata[IO_KEY] = {"encoder": encoder.to_dict(), "decoder": decoder.to_dict()}
    if latency:
        net.metadata[IO_KEY]["latency"] = int(latency)
    return net


def io_latency(net: Network) -> int:
    """Steps the outputs lag the inputs, as recorded by :func:`attach_io` (0 if none).

    Raises
    ------
    NetworkError
        When the recorded value is not an integer >= 0.
    """
    doc = net.metadata.get(IO_KEY)
    lat = doc.get("latency", 0) if isinstance(doc, dict) else 0
    _check_int("metadata['io']", "latency", lat, 0)
    return int(lat)


def io_of(net: Network) -> tuple[Encoder, Decoder]:
    """The encoder and decoder recorded in ``net`` by :func:`attach_io`.

    Raises
    ------
    NetworkError
        When the network carries none, or a malformed or mismatching one.
    """
    doc = net.metadata.get(IO_KEY)
    if not isinstance(doc, dict) or "encoder" not in doc or "decoder" not in doc:
        raise NetworkError(
            "network has no encoder/decoder in metadata['io']; train it with a spikeforge "
            "trainer or record them with spikeforge.toolchain.codec.attach_io"
        )
    enc, dec = encoder_from_dict(doc["encoder"]), decoder_from_dict(doc["decoder"])
    if enc.n_inputs != len(net.inputs) or dec.n_outputs != len(net.outputs):
        raise NetworkError(
            f"metadata['io'] codes {enc.n_inputs} inputs / {dec.n_outputs} outputs but the "
            f"network has {len(net.inputs)} / {len(net.outputs)}"
        )
    return enc, dec


def output_raster(net: Network, result: SimResult, t0: int = 0, steps: int | None = None) -> np.ndarray:
    """``[steps, n_outputs]`` bool raster of ``net``'s output ports in ``result``.

    Parameters
    ----------
    net
        The network that produced ``result`` (gives the output ports).
    result
        A reference-model (or board) result.
    t0, steps
        The window to read (default: the whole run).
    """
    steps = result.steps - t0 if steps is None else steps
    pos = net.index_of()
    cols = np.array([pos[p.neuron] for p in net.outputs], dtype=np.int64)
    full = np.zeros((steps, len(result.neuron_ids)), dtype=bool)
    t = result.spike_times - t0
    keep = (t >= 0) & (t < steps)
    full[t[keep], result.spike_index[keep]] = True
    return full[:, cols]
