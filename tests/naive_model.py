"""A literal, loop-by-loop transcription of the neuron contract, for tests only.

It shares no code with spikeforge.toolchain.reference, so the vectorised oracle is itself
checked against an independent reading of the spec.
"""

from __future__ import annotations

from collections import defaultdict

from spikeforge.toolchain.ir import Network


def naive_simulate(net: Network, inputs, steps: int, bits: int = 16):
    lo, hi = -(2 ** (bits - 1)), 2 ** (bits - 1) - 1
    v = {n.id: 0 for n in net.neurons}
    refr_until = {n.id: -1 for n in net.neurons}
    arriving: dict[int, dict[int, list[int]]] = defaultdict(lambda: defaultdict(list))
    for idx, t, val in inputs:
        arriving[t][net.inputs[idx].neuron].append(val)
    spikes = []
    pots = []
    for t in range(steps):
        fired_now = []
        for n in net.neurons:
            x = v[n.id]
            if n.leak == "full":
                x = 0
            elif n.leak == "shift":
                x = x - (x >> n.leak_shift)
            floor = lo if n.v_min is None else n.v_min
            if x < floor:
                x = floor
            events = arriving[t].get(n.id, [])
            if t <= refr_until[n.id]:
                touched = False
            else:
                touched = len(events) > 0 or n.bias != 0
                total = x + n.bias + sum(events)
                x = min(hi, max(lo, total))
            if touched and x >= n.threshold:
                fired_now.append(n.id)
                x = x - n.threshold if n.reset == "subtract" else 0
                refr_until[n.id] = t + n.refractory
            v[n.id] = x
        for nid in fired_now:
            spikes.append((nid, t))
            for s in net.synapses:
                if s.pre == nid:
                    arriving[t + s.delay][s.post].append(s.weight)
        pots.append([v[n.id] for n in net.neurons])
    order = {n.id: i for i, n in enumerate(net.neurons)}
    spikes.sort(key=lambda p: (p[1], order[p[0]]))
    return spikes, pots
