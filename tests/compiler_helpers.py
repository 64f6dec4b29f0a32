"""Shared helpers of the compiler tests: random networks, one-pass runs, the spike oracle."""

from __future__ import annotations

import networkx as nx
import numpy as np
from hypothesis import strategies as st

from spikeforge.hdl.config import CoreConfig
from spikeforge.toolchain.compiler.passes import (
    CompileContext,
    Pass,
    graph_to_network,
    network_to_graph,
)
from spikeforge.toolchain.ir import Network
from spikeforge.toolchain.netgen import random_inputs, random_network
from spikeforge.toolchain.reference import simulate

#: A small core for fast tests: 8-step delays, 8-bit weights.
SMALL = CoreConfig(name="test-small", n_neurons=64, n_synapses=512, max_delay=8)


@st.composite
def networks(draw, max_neurons=16, max_synapses=60, max_delay=30, **kw):
    """A random integer network from netgen (seed and sizes drawn by hypothesis)."""
    seed = draw(st.integers(0, 2**31 - 1))
    n = draw(st.integers(0, max_neurons))
    m = draw(st.integers(0, max_synapses)) if n else 0
    d = draw(st.integers(1, max_delay))
    return random_network(seed, n, m, max_delay=d, **kw)


def run_pass(p: Pass, net: Network, config: CoreConfig = SMALL, **ctx_kw) -> tuple[Network, bool, CompileContext]:
    """Apply one pass (to its fixed point if it asks) and return the network, changed, context."""
    ctx = CompileContext(config=config, **ctx_kw)
    g = network_to_graph(net)
    changed = False
    for _ in range(50):
        c = p.apply(g, ctx)
        changed |= c
        if not (p.fixed_point and c):
            break
    return graph_to_network(g), changed, ctx


def observable(net: Network) -> set[int]:
    """Outputs and their ancestors (computed here independently of the compiler)."""
    g = nx.DiGraph()
    g.add_nodes_from(net.neuron_ids)
    g.add_edges_from((s.pre, s.post) for s in net.synapses)
    out: set[int] = set()
    for p in net.outputs:
        out |= {p.neuron} | nx.ancestors(g, p.neuron)
    return out


def assert_same_spikes(before: Network, after: Network, seed: int = 0, steps: int = 60,
                       n_stimuli: int = 3, potential_bits: int = 16, neurons: set[int] | None = None) -> int:
    """Spike for spike: every output port (by name) and every neuron both keep that can still
    reach an output in ``after`` (or ``neurons``, when given).

    Returns the number of spikes compared (so a caller can assert the check was not empty).
    """
    after.validate()
    assert [p.name for p in before.inputs] == [p.name for p in after.inputs]
    assert {p.name for p in before.outputs} == {p.name for p in after.outputs}
    keep = (observable(after) if neurons is None else neurons) & set(before.neuron_ids)
    out_after = {p.name: p.neuron for p in after.outputs}
    compared = 0
    rng = np.random.default_rng(seed)
    for _ in range(n_stimuli):
        ins = random_inputs(rng, before, steps, density=0.3, value_range=(-40, 300))
        a = simulate(before, ins, steps, potential_bits=potential_bits)
        b = simulate(after, ins, steps, potential_bits=potential_bits)
        for p in before.outputs:
            ta = [t for i, t in a.spikes if i == p.neuron]
            tb = [t for i, t in b.spikes if i == out_after[p.name]]
            assert ta == tb, f"output {p.name}: {ta} before, {tb} after (inputs {ins[:8]}...)"
        sa = sorted((t, i) for i, t in a.spikes if i in keep)
        sb = sorted((t, i) for i, t in b.spikes if i in keep)
        assert sa == sb, f"spikes differ: {sorted(set(sa) ^ set(sb))[:6]}"
        compared += len(sa)
    return compared
