"""The bit-exact reference model: the one oracle every lower layer is checked against.

The neuron contract
===================

Time is discrete (steps ``t = 0, 1, 2, …``); every value is an integer. A network runs with a
*potential width* ``P`` bits: potentials live in ``[lo, hi] = [-2**(P-1), 2**(P-1) - 1]``.
Each neuron has a potential ``v`` (initially 0) and a refractory deadline (initially none).

At step ``t``, for every neuron, in this order:

1. **Leak, then floor.** ``leak == "full"``: ``v ← 0``. ``leak == "shift"``:
   ``v ← v − (v >> k)`` (arithmetic shift, rounds toward −∞, so ``v`` decays toward 0 from
   both sides). ``leak == "none"``: unchanged. Then ``v ← max(v, v_min)`` (``v_min = None``
   means ``lo``).
2. **Integrate.** If the neuron is refractory at ``t`` (it fired at ``t_f`` and
   ``t ≤ t_f + r``), it ignores everything: no bias, no events, and it is *not touched*.
   Otherwise ``v ← sat(v + b + Σ events)``, where the events are the weights of spikes sent at
   ``t − d`` over a synapse of delay ``d`` onto this neuron, plus the external input values
   applied to it at ``t``. The sum is exact and saturated once, at the end, into ``[lo, hi]``
   (so the result never depends on the order events arrive in). The neuron is *touched* at
   ``t`` if at least one event arrived (even of weight 0 or value 0) or ``b ≠ 0``.
3. **Fire.** A touched neuron with ``v ≥ θ`` fires at ``t``: ``reset == "zero"`` sets
   ``v ← 0``, ``reset == "subtract"`` sets ``v ← v − θ``; it is refractory for steps
   ``t+1 … t+r``; each synapse ``(pre=this, post, w, d)`` delivers ``w`` to ``post`` at
   ``t + d``. An untouched neuron never fires, whatever ``v`` is.

The potential reported for step ``t`` is ``v`` at the end of step ``t`` (after any reset).

Worked examples (``P = 16``)
----------------------------
* θ = 5, no leak. Events +3 at t=0 and +3 at t=1: v = 3, then 6 ≥ 5 → fires at t=1, v = 0.
* θ = 0: a weight-0 event (or an input of value 0) at t makes the neuron fire at t; with no
  event it stays silent even though v = 0 ≥ θ.
* ``v_min = -4``, no leak: an event −10 at t=0 gives v = −10 (floor applies at the *start* of
  a step); at t=1 the floor lifts it to −4 before that step's events.
* Shift leak k = 1 from v = 100: 50, 25, 13, 7, 4, 2, 1, 1, …: ``1 − (1 >> 1) = 1`` — a
  potential of 1 never leaks away with k = 1 (and −1 becomes 0: ``−1 − (−1 >> 1) = 0``).
* Saturation: v = 32,000 and events +1,000 and −2,000 at the same step: v = 31,000 (exact sum
  −1,000 first), not 30,767 as an add-by-add saturating adder would give.
* Reset subtract, θ = 10: v = 25 at a fire → v = 15 (one spike per step at most).
* Refractory r = 2, fired at t = 3: inputs at t = 4 and 5 are dropped (and the bias too);
  at t = 6 it integrates again.
* Leak "full" with θ = 3: events 2 at t=0 and 2 at t=1 never fire it (v is zeroed between).

TENNLab RISP (threshold_inclusive, reset to 0, leak "all", clamp to min_potential before
integration, fire only when an event arrived) is the special case ``reset = "zero"``,
``leak ∈ {none, full}``, ``refractory = 0``, ``bias = 0``; see
:mod:`spikeforge.toolchain.tennlab`.

Inputs
------
An input is ``(input_index, time, value)``: ``value`` is added to the neuron bound to
``network.inputs[input_index]`` at step ``time`` (an event: it touches the neuron).

Batches
-------
:func:`simulate_batch` runs many input sequences through one network and
:func:`simulate_population` many networks (one input sequence each, or one shared); both are
one vectorised engine over all neurons of all runs, and return exactly what one-by-one
:func:`simulate` calls return.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from .ir import VALUE_MAX, Leak, Network, NetworkError, Reset, show

__all__ = [
    "DEFAULT_POTENTIAL_BITS",
    "PENDING_SLOTS_MAX",
    "TIME_MAX",
    "InputEvent",
    "ReferenceSimulator",
    "SimResult",
    "check_inputs",
    "potential_range",
    "simulate",
    "simulate_batch",
    "simulate_population",
]

log = logging.getLogger(__name__)

DEFAULT_POTENTIAL_BITS = 16

#: Latest step an input may be scheduled at.
TIME_MAX = 2**62

#: Most pending-event slots one simulator allocates (``2 × (max delay + 1) × neurons``, 4 or 8
#: bytes each): a network's delays cannot make the model allocate more than 512 MiB.
PENDING_SLOTS_MAX = 2**26

InputEvent = tuple[int, int, int]
"""``(input_index, time, value)``."""


def potential_range(bits: int) -> tuple[int, int]:
    """``(lo, hi)`` of a signed ``bits``-wide potential."""
    return -(1 << (bits - 1)), (1 << (bits - 1)) - 1


@dataclass
class SimResult:
    """What one run produced.

    Attributes
    ----------
    neuron_ids
        Neuron ids in network order; index ``i`` below means ``neuron_ids[i]``.
    steps
        Number of steps run.
    spike_times, spike_index
        One entry per spike, sorted by time then neuron index.
    potentials
        ``[steps, n_neurons]`` int64, ``v`` at the end of each step, or None if not recorded.
    events
        Number of synaptic events delivered (spikes × fan-out), including those scheduled past
        the end of the run.
    """

    neuron_ids: np.ndarray
    steps: int
    spike_times: np.ndarray
    spike_index: np.ndarray
    potentials: np.ndarray | None = None
    events: int = 0

    @property
    def spikes(self) -> list[tuple[int, int]]:
        """``[(neuron_id, t), …]`` in time order."""
        ids = self.neuron_ids[self.spike_index]
        return [(int(i), int(t)) for i, t in zip(ids, self.spike_times, strict=True)]

    @property
    def fire_counts(self) -> dict[int, int]:
        """``{neuron_id: number of spikes}`` for every neuron (zeros included)."""
        counts = np.bincount(self.spike_index, minlength=len(self.neuron_ids))
        return {int(i): int(c) for i, c in zip(self.neuron_ids, counts, strict=True)}

    def count_array(self) -> np.ndarray:
        """Fire counts as an array in network order."""
        return np.bincount(self.spike_index, minlength=len(self.neuron_ids))

    def raster(self) -> np.ndarray:
        """``[steps, n_neurons]`` bool: ``raster[t, i]`` is True if neuron ``i`` fired at ``t``."""
        r = np.zeros((self.steps, len(self.neuron_ids)), dtype=bool)
        r[self.spike_times, self.spike_index] = True
        return r

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, SimResult):
            return NotImplemented
        same_pot = (self.potentials is None) == (other.potentials is None) and (
            self.potentials is None or np.array_equal(self.potentials, other.potentials)
        )
        return (
            self.steps == other.steps
            and np.array_equal(self.neuron_ids, other.neuron_ids)
            and np.array_equal(self.spike_times, other.spike_times)
            and np.array_equal(self.spike_index, other.spike_index)
            and same_pot
        )


@dataclass
class _Compiled:
    """One network as arrays (network order)."""

    ids: np.ndarray
    threshold: np.ndarray
    leak: np.ndarray  # 0 none, 1 full, 2 shift
    shift: np.ndarray
    subtract: np.ndarray
    v_min: np.ndarray
    refractory: np.ndarray
    bias: np.ndarray
    pre: np.ndarray
    post: np.ndarray
    weight: np.ndarray
    delay: np.ndarray
    input_index: np.ndarray  # neuron index of each input port


_LEAK_CODE = {Leak.NONE: 0, Leak.FULL: 1, Leak.SHIFT: 2}


def _compile(net: Network, bits: int) -> _Compiled:
    net.validate()
    if not net.is_integer():
        raise NetworkError(
            "network has non-integer parameters (threshold, bias, v_min or weight); "
            "the reference model runs integer networks: quantize it first "
            "(spikeforge.toolchain.compiler) or round the values"
        )
    if not 2 <= bits <= 62:
        raise NetworkError(f"potential_bits = {bits} is out of range; allowed: 2..62")
    lo, hi = potential_range(bits)
    for n in net.neurons:
        for fieldname, val, a, b in (
            ("threshold", n.threshold, 0, hi),
            ("bias", n.bias, lo, hi),
            ("v_min", lo if n.v_min is None else n.v_min, lo, 0),
        ):
            if not a <= val <= b:
                raise NetworkError(
                    f"neuron {n.id}: field '{fieldname}' = {val} does not fit a {bits}-bit potential; "
                    f"allowed: {a}..{b} (raise potential_bits or rescale the network)"
                )
    idx = net.index_of()
    i64 = np.int64
    return _Compiled(
        ids=np.array(net.neuron_ids, dtype=i64),
        threshold=np.array([n.threshold for n in net.neurons], dtype=i64),
        leak=np.array([_LEAK_CODE[n.leak] for n in net.neurons], dtype=np.int8),
        shift=np.array([n.leak_shift if n.leak is Leak.SHIFT else 0 for n in net.neurons], dtype=i64),
        subtract=np.array([n.reset is Reset.SUBTRACT for n in net.neurons], dtype=bool),
        v_min=np.array([lo if n.v_min is None else n.v_min for n in net.neurons], dtype=i64),
        refractory=np.array([n.refractory for n in net.neurons], dtype=i64),
        bias=np.array([n.bias for n in net.neurons], dtype=i64),
        pre=np.array([idx[s.pre] for s in net.synapses], dtype=i64).reshape(-1),
        post=np.array([idx[s.post] for s in net.synapses], dtype=i64).reshape(-1),
        weight=np.array([s.weight for s in net.synapses], dtype=i64).reshape(-1),
        delay=np.array([s.delay for s in net.synapses], dtype=i64).reshape(-1),
        input_index=np.array([idx[p.neuron] for p in net.inputs], dtype=i64).reshape(-1),
    )


def check_inputs(inputs: Sequence[InputEvent], n_inputs: int, *, since: int = 0) -> None:
    """Check ``(input_index, time, value)`` triples before any work is done with them.

    Parameters
    ----------
    inputs
        The triples.
    n_inputs
        How many input ports the network has.
    since
        The first step an input may still be scheduled at.

    Raises
    ------
    ValueError
        Naming the first bad triple, its field, its value and what is allowed.
    """
    for k, item in enumerate(inputs):
        if not (isinstance(item, Sequence | np.ndarray) and len(item) == 3):
            raise ValueError(f"input #{k} = {show(item)} is not an [input_index, time, value] triple")
        i, t, v = item
        if not (isinstance(i, int | np.integer) and not isinstance(i, bool) and 0 <= i < n_inputs):
            raise ValueError(
                f"input #{k}: input_index = {show(i)} is out of range; this network has "
                f"{n_inputs} inputs (0..{n_inputs - 1})"
            )
        if not (isinstance(t, int | np.integer) and not isinstance(t, bool) and since <= t <= TIME_MAX):
            raise ValueError(f"input #{k}: time = {show(t)} is out of range; allowed: an integer in "
                             f"{since}..{TIME_MAX}")
        if not isinstance(v, int | np.integer) or isinstance(v, bool):
            raise ValueError(
                f"input #{k}: value = {show(v)} is not an integer; integer networks take integer "
                "input values (scale and round them)"
            )
        if not -VALUE_MAX <= v <= VALUE_MAX:
            raise ValueError(f"input #{k}: value = {show(v)} is out of range; allowed: "
                             f"-{VALUE_MAX}..{VALUE_MAX}")


class ReferenceSimulator:
    """A stateful, vectorised simulator of one or many independent runs.

    Each *run* is a network with its own state; runs may share a network (a batch of input
    sequences) or not (a population). State persists across :meth:`run` calls, so a long
    experiment can be fed step by step, as the hardware is.

    Parameters
    ----------
    networks
        One network per run (the same object may repeat).
    potential_bits
        Width ``P`` of the saturating potential.
    record_potentials
        Keep ``v`` at the end of every step (memory: steps × neurons × 8 bytes per run).
    """

    def __init__(
        self,
        networks: Sequence[Network],
        potential_bits: int = DEFAULT_POTENTIAL_BITS,
        record_potentials: bool = False,
    ) -> None:
        if len(networks) == 0:
            raise ValueError("ReferenceSimulator needs at least one network")
        self.bits = potential_bits
        self.lo, self.hi = potential_range(potential_bits)
        self.record_potentials = record_potentials
        cache: dict[int, _Compiled] = {}
        comps = []
        for net in networks:
            if id(net) not in cache:
                cache[id(net)] = _compile(net, potential_bits)
            comps.append(cache[id(net)])
        self._comps = comps
        sizes = np.array([len(c.ids) for c in comps], dtype=np.int64)
        self._offset = np.concatenate([[0], np.cumsum(sizes)])
        g = int(self._offset[-1])
        self.n_global = g

        def cat(attr: str) -> np.ndarray:
            return np.concatenate([getattr(c, attr) for c in comps])

        self._thr = cat("threshold")
        self._leak = cat("leak")
        self._shift = cat("shift")
        self._sub = cat("subtract")
        self._vmin = cat("v_min")
        self._refr = cat("refractory")
        self._bias = cat("bias")
        self._bias_touch = self._bias != 0
        self._full = self._leak == 1
        self._shifting = self._leak == 2
        self._any_full = bool(self._full.any())
        self._any_shift = bool(self._shifting.any())
        self._any_refr = bool((self._refr > 0).any())

        # Synapses in global indices, CSR by pre.
        pre = np.concatenate([c.pre + self._offset[k] for k, c in enumerate(comps)])
        post = np.concatenate([c.post + self._offset[k] for k, c in enumerate(comps)])
        w = np.concatenate([c.weight for c in comps])
        d = np.concatenate([c.delay for c in comps])
        order = np.argsort(pre, kind="stable")
        self._post = post[order]
        self._w = w[order]
        self._d = d[order]
        self._indptr = np.concatenate([[0], np.cumsum(np.bincount(pre, minlength=g))]).astype(np.int64)
        self._ring = int(d.max()) + 1 if len(d) else 1
        ring = self._ring
        if 2 * ring * g > PENDING_SLOTS_MAX:
            raise NetworkError(
                f"the reference model would need {2 * ring * g} pending-event slots (2 x (max delay "
                f"{ring - 1} + 1) x {g} neurons); allowed: at most {PENDING_SLOTS_MAX} (shorten the delays "
                "or simulate fewer runs at once)")
        # Pending events, run-major: run k owns a block of 2*ring rows of its n_k neurons, so
        # the events of one run's spikes land in one small, cache-resident block. Row
        # ``(t % ring) + d`` is written without a modulo: rows ``ring..2*ring-1`` alias rows
        # ``0..ring-1`` and both are read (and cleared) when their step comes.
        self._sizes = sizes
        self._uniform = bool(len(set(sizes.tolist())) == 1)
        run_of_g = np.repeat(np.arange(len(comps)), sizes)
        self._n_g = sizes[run_of_g]
        self._rd_base = 2 * ring * self._offset[run_of_g] + (np.arange(g) - self._offset[run_of_g])
        post_run = run_of_g[self._post] if len(self._post) else np.zeros(0, dtype=np.int64)
        self._off = self._rd_base[self._post] + self._d * sizes[post_run] if len(self._post) else self._post
        # Each pending slot holds ``sum(w) * 2**kb + count``: the weight sum and the number of
        # events (a neuron is touched when count > 0) in one int64, one scatter per event.
        in_deg = np.bincount(post, minlength=g) if len(post) else np.zeros(g, dtype=np.int64)
        self._kb = int(in_deg.max(initial=0)).bit_length()
        in_abs = np.bincount(post, weights=np.abs(w).astype(np.float64), minlength=g) if len(post) else in_deg
        if float(in_abs.max(initial=0)) * (1 << self._kb) >= 2.0**62:
            raise NetworkError(
                "synaptic weights too large for the reference model: a neuron's summed |weight| "
                f"is {float(in_abs.max()):.3g}; keep it below 2**{62 - self._kb}"
            )
        # int32 slots when every slot's encoded sum fits: half the memory the scatter touches.
        fits32 = (float(in_abs.max(initial=0)) + 1) * (1 << self._kb) < 2.0**31
        acc_t = np.int32 if fits32 else np.int64
        self._wenc = ((self._w << self._kb) + 1).astype(acc_t)
        self._acc = np.zeros(2 * self._ring * g, dtype=acc_t)
        # A batch (every run the same network) delivers from ONE copy of that network's CSR
        # (cache resident) instead of runs-many concatenated copies.
        c0 = comps[0]
        self._shared = len(comps) > 1 and all(c is c0 for c in comps)
        if self._shared:
            n0 = len(c0.ids)
            lorder = np.argsort(c0.pre, kind="stable")
            self._n0 = n0
            self._l_indptr = np.concatenate([[0], np.cumsum(np.bincount(c0.pre, minlength=n0))]).astype(np.int64)
            self._l_off = c0.delay[lorder] * n0 + c0.post[lorder]
            self._l_wenc = ((c0.weight[lorder] << self._kb) + 1).astype(acc_t)

        self.t = 0
        self.v = np.zeros(g, dtype=np.int64)
        self._refr_until = np.full(g, -1, dtype=np.int64)
        self._spike_t: list[np.ndarray] = []
        self._spike_g: list[np.ndarray] = []
        self._pots: list[np.ndarray] = []
        self.events = np.zeros(len(comps), dtype=np.int64)
        self._pending_inputs: dict[int, tuple[list[np.ndarray], list[np.ndarray]]] = {}

    @property
    def runs(self) -> int:
        """Number of independent runs."""
        return len(self._comps)

    def add_inputs(self, run: int, inputs: Sequence[InputEvent]) -> None:
        """Schedule external inputs ``(input_index, time, value)`` for one run.

        Raises
        ------
        ValueError
            On an input index the network does not have, a time already simulated, or a
            non-integer value.
        """
        if not inputs:
            return
        comp = self._comps[run]
        check_inputs(inputs, len(comp.input_index), since=self.t)
        a = np.array(inputs, dtype=np.int64)
        g = comp.input_index[a[:, 0]] + self._offset[run]
        for t in np.unique(a[:, 1]):
            m = a[:, 1] == t
            gl, vl = self._pending_inputs.setdefault(int(t), ([], []))
            gl.append(g[m])
            vl.append(a[m, 2])

    def add_input_arrays(self, run: np.ndarray, input_index: np.ndarray, time: np.ndarray,
                         value: np.ndarray) -> None:
        """Vectorised :meth:`add_inputs`: one event per element, for many runs at once.

        Same meaning as :meth:`add_inputs` (event ``k`` adds ``value[k]`` at step ``time[k]``
        to the neuron bound to input ``input_index[k]`` of run ``run[k]``), without a Python
        loop per event: what a trainer feeding a population × a data batch needs.

        Raises
        ------
        ValueError
            On arrays of different lengths or not integers, a run or input index out of range,
            or a time already simulated (the message names the first bad event).
        """
        arrs = [np.asarray(a) for a in (run, input_index, time, value)]
        if len({a.shape for a in arrs}) != 1 or arrs[0].ndim != 1:
            raise ValueError("add_input_arrays: run, input_index, time and value must be 1-D arrays of one length")
        if not arrs[0].size:
            return
        for name, a in zip(("run", "input_index", "time", "value"), arrs, strict=True):
            if not np.issubdtype(a.dtype, np.integer):
                raise ValueError(f"add_input_arrays: {name} has dtype {a.dtype}; expected integers")
        r, i, t, v = (a.astype(np.int64) for a in arrs)
        if not hasattr(self, "_in_ptr"):
            self._in_ptr = np.concatenate([[0], np.cumsum([len(c.input_index) for c in self._comps])])
            self._in_cat = np.concatenate([c.input_index for c in self._comps]).astype(np.int64)
        bad = np.flatnonzero((r < 0) | (r >= self.runs))
        if bad.size:
            raise ValueError(f"input #{bad[0]}: run = {r[bad[0]]} is out of range; allowed: 0..{self.runs - 1}")
        n_in = self._in_ptr[r + 1] - self._in_ptr[r]
        bad = np.flatnonzero((i < 0) | (i >= n_in))
        if bad.size:
            k = bad[0]
            raise ValueError(f"input #{k}: input_index = {i[k]} is out of range; run {r[k]} has {n_in[k]} inputs")
        bad = np.flatnonzero(t < self.t)
        if bad.size:
            raise ValueError(f"input #{bad[0]}: time = {t[bad[0]]} is out of range; allowed: an integer >= {self.t}")
        g = self._in_cat[self._in_ptr[r] + i] + self._offset[r]
        t0 = int(t.min())
        span = int(t.max()) - t0
        times = (np.flatnonzero(np.bincount(t - t0)) + t0 if span <= 4 * len(t) + 1024 else np.unique(t)).tolist()
        for tt in times:  # typically a window's few distinct steps
            m = t == tt
            gl, vl = self._pending_inputs.setdefault(tt, ([], []))
            gl.append(g[m])
            vl.append(v[m])

    def spike_arrays(self, since: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Every spike at steps ``>= since`` as arrays ``(time, run, neuron_index)``.

        ``neuron_index`` is the position in that run's network (network order). Cheap for a
        recent window (it reads the spike log backwards), so a closed loop that runs a few
        steps and reads what its outputs did can call it every window.
        """
        ts: list[np.ndarray] = []
        gs: list[np.ndarray] = []
        for t_arr, g_arr in zip(reversed(self._spike_t), reversed(self._spike_g), strict=True):
            if t_arr[0] < since:
                break
            ts.append(t_arr)
            gs.append(g_arr)
        if not ts:
            z = np.zeros(0, dtype=np.int64)
            return z, z.copy(), z.copy()
        t = np.concatenate(ts[::-1])
        g = np.concatenate(gs[::-1])
        run = np.searchsorted(self._offset, g, side="right") - 1
        return t, run, g - self._offset[run]

    def run(self, steps: int) -> None:
        """Advance every run by ``steps`` steps."""
        if steps < 0:
            raise ValueError(f"steps = {steps} is out of range; allowed: an integer >= 0")
        ring = self._ring
        lo, hi = self.lo, self.hi
        for _ in range(steps):
            t = self.t
            v = self.v
            # 1. leak, then floor
            if self._any_full:
                v[self._full] = 0
            if self._any_shift:
                s = self._shifting
                v[s] -= v[s] >> self._shift[s]
            np.maximum(v, self._vmin, out=v)
            # 2. integrate
            enc = self._take_slot(t % ring)
            inc = (enc >> self._kb).astype(np.int64)
            touched = (enc & ((1 << self._kb) - 1)) != 0
            touched |= self._bias_touch
            pend = self._pending_inputs.pop(t, None)
            if pend is not None:
                gi = np.concatenate(pend[0])
                np.add.at(inc, gi, np.concatenate(pend[1]))
                touched[gi] = True
            newv = v + inc
            newv += self._bias
            np.clip(newv, lo, hi, out=newv)
            if self._any_refr:
                active = self._refr_until < t
                v = np.where(active, newv, v)
                touched &= active
            else:
                v = newv
            # 3. fire
            fire = touched & (v >= self._thr)
            fired = np.flatnonzero(fire)
            if len(fired):
                v[fired] = np.where(self._sub[fired], v[fired] - self._thr[fired], 0)
                if self._any_refr:
                    self._refr_until[fired] = t + self._refr[fired]
                self._spike_t.append(np.full(len(fired), t, dtype=np.int64))
                self._spike_g.append(fired)
                self._deliver(fired, t)
            self.v = v
            if self.record_potentials:
                self._pots.append(v.copy())
            self.t = t + 1

    def _take_slot(self, slot: int) -> np.ndarray:
        """Pending events of step ``t`` (``slot = t % ring``) for every neuron; clears them."""
        ring, g = self._ring, self.n_global
        if self._uniform:
            blocks = self._acc.reshape(len(self._sizes), 2 * ring, int(self._sizes[0]))
            enc = blocks[:, slot, :] + blocks[:, slot + ring, :]
            blocks[:, slot, :] = 0
            blocks[:, slot + ring, :] = 0
            return enc.reshape(g)
        idx = self._rd_base + slot * self._n_g
        alias = idx + ring * self._n_g
        enc = self._acc[idx] + self._acc[alias]
        self._acc[idx] = 0
        self._acc[alias] = 0
        return enc

    def _deliver(self, fired: np.ndarray, t: int) -> None:
        """Schedule the synapses of every fired neuron (global indices) at ``t + delay``."""
        if self._shared:
            # A batch: one copy of the network's CSR, shifted to each run's neurons.
            run = fired // self._n0
            indptr, loc = self._l_indptr, fired - run * self._n0
            off, wenc = self._l_off, self._l_wenc
        else:
            run, indptr, loc, off, wenc = None, self._indptr, fired, self._off, self._wenc
        starts = indptr[loc]
        counts = indptr[loc + 1] - starts
        total = int(counts.sum())
        if total == 0:
            return
        # Concatenate the synapse ranges [starts, starts + counts) of every fired neuron.
        ends = np.cumsum(counts)
        e = np.arange(total, dtype=np.int64) + np.repeat(starts - (ends - counts), counts)
        tgt = np.take(off, e)
        slot = t % self._ring
        if run is not None:  # shared CSR: shift to each run's block and the current slot
            tgt += np.repeat(run * (2 * self._ring * self._n0) + slot * self._n0, counts)
        elif self.runs == 1 or self._uniform:
            tgt += slot * int(self._sizes[0])
        else:  # the slot row's stride is the size of the target's run
            tgt += np.repeat(slot * self._n_g[fired], counts)
        np.add.at(self._acc, tgt, np.take(wenc, e))
        if self.runs == 1:
            self.events[0] += total
        else:
            if run is None:
                run = np.searchsorted(self._offset, fired, side="right") - 1
            np.add.at(self.events, run, counts)

    def results(self) -> list[SimResult]:
        """One :class:`SimResult` per run, covering every step run so far."""
        if self._spike_t:
            st = np.concatenate(self._spike_t)
            sg = np.concatenate(self._spike_g)
        else:
            st = np.zeros(0, dtype=np.int64)
            sg = np.zeros(0, dtype=np.int64)
        pots = np.stack(self._pots) if self._pots else np.zeros((0, self.n_global), dtype=np.int64)
        run_of = np.searchsorted(self._offset, sg, side="right") - 1
        out = []
        for k, c in enumerate(self._comps):
            m = run_of == k
            lo_g = self._offset[k]
            out.append(
                SimResult(
                    neuron_ids=c.ids,
                    steps=self.t,
                    spike_times=st[m],
                    spike_index=sg[m] - lo_g,
                    potentials=pots[:, lo_g : self._offset[k + 1]].copy() if self.record_potentials else None,
                    events=int(self.events[k]),
                )
            )
        return out


def simulate(
    network: Network,
    inputs: Sequence[InputEvent] = (),
    steps: int = 100,
    *,
    potential_bits: int = DEFAULT_POTENTIAL_BITS,
    record_potentials: bool = False,
) -> SimResult:
    """Run one network on one input sequence for ``steps`` steps (from t = 0).

    Parameters
    ----------
    network
        An integer network (see :meth:`Network.is_integer`).
    inputs
        ``(input_index, time, value)`` triples.
    steps
        Number of steps.
    potential_bits
        Width of the saturating potential.
    record_potentials
        Also return ``v`` after every step.

    Returns
    -------
    SimResult
    """
    sim = ReferenceSimulator([network], potential_bits, record_potentials)
    sim.add_inputs(0, inputs)
    sim.run(steps)
    return sim.results()[0]


def simulate_batch(
    network: Network,
    batch: Sequence[Sequence[InputEvent]],
    steps: int = 100,
    *,
    potential_bits: int = DEFAULT_POTENTIAL_BITS,
    record_potentials: bool = False,
) -> list[SimResult]:
    """Run many input sequences through one network at once (one result per sequence)."""
    sim = ReferenceSimulator([network] * len(batch), potential_bits, record_potentials)
    for k, seq in enumerate(batch):
        sim.add_inputs(k, seq)
    sim.run(steps)
    return sim.results()


def simulate_population(
    networks: Sequence[Network],
    inputs: Sequence[Sequence[InputEvent]] | None = None,
    steps: int = 100,
    *,
    shared_inputs: Sequence[InputEvent] = (),
    potential_bits: int = DEFAULT_POTENTIAL_BITS,
    record_potentials: bool = False,
) -> list[SimResult]:
    """Run many networks at once (what an evolutionary trainer needs).

    Parameters
    ----------
    networks
        The networks (any sizes; typically one population of the same size).
    inputs
        One input sequence per network, or None.
    shared_inputs
        One input sequence given to every network (added to ``inputs`` if both are given).
    steps, potential_bits, record_potentials
        As for :func:`simulate`.
    """
    sim = ReferenceSimulator(list(networks), potential_bits, record_potentials)
    if inputs is not None and len(inputs) != len(networks):
        raise ValueError(
            f"got {len(inputs)} input sequences for {len(networks)} networks; "
            "give one per network, or use shared_inputs"
        )
    for k in range(len(networks)):
        sim.add_inputs(k, shared_inputs)
        if inputs is not None:
            sim.add_inputs(k, inputs[k])
    sim.run(steps)
    return sim.results()
