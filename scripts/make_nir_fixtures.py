"""Regenerate the NIR files written by other tools, and those tools' own outputs, under tests/data/nir.

Needs the ``[fixtures]`` extra (torch, snnTorch, nir, nirtorch, scikit-learn) in a separate
environment; the tests read only the committed files, so ``make test`` needs no torch::

    python3.11 -m venv /tmp/nirvenv
    /tmp/nirvenv/bin/pip install torch --index-url https://download.pytorch.org/whl/cpu
    /tmp/nirvenv/bin/pip install -e '.[fixtures]'
    /tmp/nirvenv/bin/python scripts/make_nir_fixtures.py

Each fixture is a ``.nir`` file written by the tool's own exporter and a ``.npz`` (no pickle)
with the inputs and what the tool computed on them:

``snntorch_if``
    ``Linear(6→8, no bias) → Leaky(beta=1) → Linear(8→4, no bias) → Leaky(beta=1)`` with
    weights on a 1/64 grid and threshold 1 + 2⁻¹² (so the float sums are exact, an integer
    copy at scale 4096 is too, and v never lands exactly on θ), 0/1 input spikes; ``in`` ``[T, B, 6]``, ``spk1`` ``[T, B, 8]``, ``spk2`` ``[T, B, 4]``.
``snntorch_digits``
    A LIF MLP ``64 → 64 → 10`` (beta = 0.875, threshold 1, subtract reset: snnTorch's
    defaults but beta), trained with BPTT on scikit-learn's digits (Bernoulli rate code, T
    steps, spike-count readout); the test split's packed input spikes ``in_bits``, labels
    ``y``, and snnTorch's output spike counts ``counts`` ``[N, 10]``.
"""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

import numpy as np

log = logging.getLogger("make_nir_fixtures")

#: 1 + 2⁻¹²: with weights on a 1/64 grid, v can land exactly on θ (where snnTorch's ``>`` and
#: the contract's ``≥`` differ) only after 63 spikes of one neuron, more than 40 steps allow.
IF_THRESHOLD = 1.0 + 2.0 ** -12
OUT = Path(__file__).resolve().parent.parent / "tests" / "data" / "nir"


def _run(net, x):  # noqa: ANN001, ANN202 - torch types are optional here
    """snnTorch's own forward, one step at a time; spikes of every Leaky layer ``[T, B, n]``."""
    import snntorch as snn
    import torch
    from snntorch import utils

    utils.reset(net)
    layers = [m for m in net if isinstance(m, snn.Leaky)]
    rec: list[list] = [[] for _ in layers]
    with torch.no_grad():
        for t in range(x.shape[0]):
            h = x[t]
            k = 0
            for m in net:
                h = m(h)
                if isinstance(m, snn.Leaky):
                    rec[k].append(h.clone())
                    k += 1
    return [torch.stack(r).numpy().astype(np.uint8) for r in rec]


def _leaky(n: int, beta: float, threshold: float = 1.0):  # noqa: ANN202
    """An snnTorch Leaky with per-neuron beta and threshold (what ``export_to_nir`` needs to give
    the LIF node a shape NIR's type inference accepts)."""
    import snntorch as snn
    import torch

    return snn.Leaky(beta=torch.full((n,), beta), threshold=torch.full((n,), threshold), init_hidden=True)


def make_if(seed: int) -> None:
    import nir
    import torch
    from snntorch.export_nir import export_to_nir

    torch.manual_seed(seed)
    net = torch.nn.Sequential(
        torch.nn.Linear(6, 8, bias=False), _leaky(8, 1.0, IF_THRESHOLD),
        torch.nn.Linear(8, 4, bias=False), _leaky(4, 1.0, IF_THRESHOLD))
    with torch.no_grad():
        for m in net:
            if isinstance(m, torch.nn.Linear):
                m.weight.copy_(torch.round(torch.randn_like(m.weight) * 0.5 * 64) / 64)
    x = (torch.rand(40, 16, 6) < 0.3).float()
    spk1, spk2 = _run(net, x)
    graph = export_to_nir(net, x[0, 0])
    nir.write(str(OUT / "snntorch_if.nir"), graph)
    np.savez_compressed(OUT / "snntorch_if.npz", **{"in": x.numpy().astype(np.uint8)}, spk1=spk1, spk2=spk2)
    log.info("snntorch_if: %d hidden, %d output spikes", spk1.sum(), spk2.sum())


def _digits(seed: int, steps: int):  # noqa: ANN202
    import torch
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    X, y = load_digits(return_X_y=True)
    Xtr, Xte, ytr, yte = train_test_split(X / 16.0, y, test_size=0.3, random_state=seed, stratify=y)
    g = torch.Generator().manual_seed(seed)

    def code(a: np.ndarray) -> torch.Tensor:
        p = torch.tensor(a, dtype=torch.float32)
        return (torch.rand((steps, *p.shape), generator=g) < p).float()  # [T, N, 64]

    return code(Xtr), torch.tensor(ytr), code(Xte), torch.tensor(yte)


def make_digits(seed: int, steps: int, epochs: int) -> None:
    import nir
    import torch
    from snntorch import functional as SF
    from snntorch import utils
    from snntorch.export_nir import export_to_nir

    torch.manual_seed(seed)
    beta = 0.875
    net = torch.nn.Sequential(
        torch.nn.Linear(64, 64), _leaky(64, beta),
        torch.nn.Linear(64, 10), _leaky(10, beta))
    xtr, ytr, xte, yte = _digits(seed, steps)
    opt = torch.optim.Adam(net.parameters(), lr=2e-3)
    loss_fn = SF.ce_count_loss()
    for ep in range(epochs):
        perm = torch.randperm(xtr.shape[1])
        for i in range(0, len(perm), 64):
            idx = perm[i:i + 64]
            utils.reset(net)
            out = torch.stack([net(xtr[t, idx]) for t in range(steps)])
            loss = loss_fn(out, ytr[idx])
            opt.zero_grad()
            loss.backward()
            opt.step()
        _, spk2 = _run(net, xte)
        acc = float((spk2.sum(0).argmax(1) == yte.numpy()).mean())
        log.info("digits epoch %d: loss %.3f, test accuracy %.3f", ep, float(loss), acc)
    _, spk2 = _run(net, xte)
    counts = spk2.sum(0).astype(np.int16)  # [N, 10]
    graph = export_to_nir(net, xte[0, 0])
    nir.write(str(OUT / "snntorch_digits.nir"), graph)
    bits = np.packbits(xte.numpy().astype(np.uint8).transpose(1, 0, 2), axis=-1)  # [N, T, 8]
    np.savez_compressed(OUT / "snntorch_digits.npz", in_bits=bits, y=yte.numpy().astype(np.int8),
                        counts=counts, steps=np.array(steps))
    log.info("snntorch_digits: snnTorch test accuracy %.4f on %d samples",
             float((counts.argmax(1) == yte.numpy()).mean()), len(yte))


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--steps", type=int, default=25, help="time steps per digits sample")
    ap.add_argument("--epochs", type=int, default=30)
    ap.add_argument("--only", choices=("if", "digits"), default=None)
    args = ap.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(name)s: %(message)s")
    OUT.mkdir(parents=True, exist_ok=True)
    if args.only in (None, "if"):
        make_if(args.seed)
    if args.only in (None, "digits"):
        make_digits(args.seed, args.steps, args.epochs)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
