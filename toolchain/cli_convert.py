"""``spikeforge train convert`` (ANN-to-SNN conversion) and ``spikeforge bench convert``.

See :mod:`spikeforge.toolchain.train.convert` for the method.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import time
from typing import Any

__all__ = ["BOARD_PRESETS", "add_parser", "bench_convert", "run"]

log = logging.getLogger(__name__)

#: ``--target`` board → core preset.
BOARD_PRESETS = {"icebreaker": "up5k", "ulx3s-85f": "ecp5-85f"}

_DESCRIPTION = """\
Train a small MLP on a scikit-learn task (offline), convert it to integrate-and-fire neurons
with reset by subtraction (data-based normalisation, biases as the neuron bias, one step per
layer), quantize it to the target core and evaluate every stage on the test split: ANN, float
SNN, integer SNN in the bit-exact reference model, accuracy vs timesteps, synaptic events per
inference. The network is written as spikeforge JSON with its encoder, decoder, latency and
provenance in the metadata."""

_EPILOG = """\
examples:
  spikeforge train convert --task digits --target icebreaker -o digits.json
  spikeforge train convert --task breast-cancer --timesteps 16 -o bc.json --plot bc.png
  spikeforge train convert --task digits --activation softlif --noise 0.1 -o d.json
  spikeforge train convert --task digits --encoding ttfs -o d_ttfs.json
  spikeforge train convert --task digits --weights mlp.npz -o d.json   # trained elsewhere"""


def add_parser(train_sub: argparse._SubParsersAction) -> None:
    """Add ``convert`` to the ``train`` group."""
    p = train_sub.add_parser("convert", help="ANN-to-SNN conversion (numpy MLP, soft-LIF/ReLU)",
                             description=_DESCRIPTION, epilog=_EPILOG,
                             formatter_class=argparse.RawDescriptionHelpFormatter)
    _options(p)
    p.add_argument("-o", "--output", required=True, metavar="NETWORK", help="network JSON to write")
    p.add_argument("--plot", metavar="PNG", help="write the accuracy-vs-timesteps plot here")
    p.add_argument("--save-weights", metavar="NPZ", help="also write the trained ANN (.npz, no pickle)")
    p.set_defaults(func=_cmd_train_convert)


def _options(p: argparse.ArgumentParser) -> None:
    from .train.convert import ACTIVATIONS, TASKS

    p.add_argument("--task", choices=TASKS, default="digits", help="dataset (default: digits)")
    p.add_argument("--timesteps", type=int, default=32, metavar="T",
                   help="presentation window per sample (default: 32)")
    p.add_argument("--target", choices=sorted(BOARD_PRESETS), default="icebreaker",
                   help="board whose core the network must fit (default: icebreaker = up5k)")
    p.add_argument("--config", metavar="PRESET", help="core preset instead of --target's")
    p.add_argument("--hidden", default="128", metavar="N[,N…]", help="hidden widths (default: 128)")
    p.add_argument("--activation", choices=ACTIVATIONS, default="clipped_relu",
                   help="hidden activation (default: clipped_relu, which converts best: 98.2 %% "
                        "integer SNN on digits, see 'spikeforge bench convert')")
    p.add_argument("--noise", type=float, default=0.0, help="training noise std (default: 0)")
    p.add_argument("--epochs", type=int, default=40, help="training epochs (default: 40)")
    p.add_argument("--encoding", choices=("rate", "ttfs"), default="rate", help="input code")
    p.add_argument("--neuron", choices=("if", "lif"), default=None,
                   help="hidden neurons: IF with reset by subtraction, or the contract's LIF (shift "
                        "leak 4, refractory 2) for soft-LIF (default: lif for softlif, else if)")
    p.add_argument("--percentile", type=float, default=99.9, help="normalisation percentile")
    p.add_argument("--weights", metavar="NPZ|NIR",
                   help="convert these weights instead of training (.npz from --save-weights, "
                        "or a NIR file of Affine/Linear layers)")
    p.add_argument("--seed", type=int, default=0, help="split, initialisation and shuffling seed")


def run(args: argparse.Namespace, curve_steps: tuple[int, ...] = (2, 4, 8, 16, 32, 64),
        progress: bool = True) -> tuple[Any, Any, Any, Any]:
    """Train (or load), convert and evaluate as the options say; return ``(mlp, net, eval, data)``."""
    from spikeforge.hdl.config import preset

    from .train.convert import (
        ConvertError,
        convert,
        evaluate,
        lif_softlif_params,
        load_task,
        provenance,
        train_mlp,
    )

    try:
        hidden = tuple(int(h) for h in str(args.hidden).split(",") if h.strip())
    except ValueError:
        raise ConvertError(f"--hidden = {args.hidden!r} is not a comma-separated list of integers") from None
    if any(h < 1 for h in hidden):
        raise ConvertError(f"--hidden = {args.hidden!r}: every width must be >= 1")
    cfg = preset(args.config or BOARD_PRESETS[args.target])
    data = load_task(args.task, seed=args.seed)
    t0 = time.perf_counter()
    if args.weights:
        mlp = _load_weights(args.weights, args.activation)
    else:
        bar = None
        if progress:
            from tqdm import tqdm

            bar = tqdm(total=args.epochs, desc=f"train {args.task}", unit="epoch", file=sys.stderr,
                       disable=None, leave=False)

        def tick(epoch: int, loss: float) -> None:
            if bar is not None:
                bar.set_postfix(loss=f"{loss:.3f}")
                bar.update(1)

        lif = lif_softlif_params(4, 2) if args.activation == "softlif" else None
        mlp = train_mlp(data.x_train, data.y_train, hidden=hidden, activation=args.activation,
                        epochs=args.epochs, noise=args.noise, seed=args.seed, softlif_params=lif,
                        progress=tick)
        if bar is not None:
            bar.close()
    train_s = time.perf_counter() - t0
    net, report = convert(mlp, data.x_train, cfg, timesteps=args.timesteps, encoding=args.encoding,
                          percentile=args.percentile, neuron=getattr(args, "neuron", None))
    t0 = time.perf_counter()
    ev = evaluate(mlp, net, report, data.x_test, data.y_test, curve_steps=curve_steps,
                  potential_bits=cfg.potential_bits)
    provenance(net, data, ev, {"timesteps": args.timesteps, "config": cfg.name,
                               "train_seconds": round(train_s, 2), "seed": args.seed})
    log.info("evaluated in %.1f s", time.perf_counter() - t0)
    return mlp, net, ev, data


def _load_weights(path: str, activation: str) -> Any:
    from .train.convert import MLP

    if path.endswith(".npz"):
        return MLP.load(path)
    import nir

    from .nirio import affine_chain

    ws, bs = affine_chain(nir.read(path, type_check=False))
    return MLP.from_arrays(ws, bs, activation)


def _cmd_train_convert(args: argparse.Namespace) -> int:
    from .ir import save_network
    from .train.convert import save_curve_plot

    mlp, net, ev, data = run(args)
    save_network(net, args.output)
    if args.save_weights:
        mlp.save(args.save_weights)
    if args.plot:
        save_curve_plot(ev, args.plot, title=f"{data.name}: {net.metadata['conversion']['config']}")
    d = ev.to_dict()
    sys.stdout.write(
        f"wrote {args.output}: {len(net.neurons)} neurons, {len(net.synapses)} synapses\n"
        f"accuracy: ANN {100 * d['ann_accuracy']:.2f} %, float SNN {100 * d['float_snn_accuracy']:.2f} %, "
        f"integer SNN {100 * d['int_snn_accuracy']:.2f} % (reference model, T = {args.timesteps})\n"
        f"synaptic events per inference: {d['events_per_inference']:.0f}\n"
        f"timesteps within 1 point of the ANN: {ev.steps_within(1.0)}\n")
    return 0


def bench_convert(args: argparse.Namespace) -> int:
    """``spikeforge bench convert``: one JSON line per task (digits, breast cancer) and hidden
    activation (ReLU, clipped ReLU, soft-LIF with training noise 0.1) on up5k, T = 32."""
    from .cli import machine_description

    machine = machine_description()
    for task, act in [(t, a) for t in ("digits", "breast-cancer") for a in ("relu", "clipped_relu", "softlif")]:
        ns = argparse.Namespace(task=task, timesteps=32, target="icebreaker", config="up5k",
                                hidden="128", activation=act, noise=0.1 if act == "softlif" else 0.0,
                                epochs=40,
                                encoding="rate", percentile=99.9, weights=None, seed=args.seed)
        t0 = time.perf_counter()
        _, net, ev, _ = run(ns, curve_steps=(1, 2, 4, 8, 12, 16, 24, 32, 48, 64), progress=False)
        d = ev.to_dict()
        line = {
            "bench": "convert", "task": task, "activation": act, "config": "up5k", "timesteps": 32,
            "ann_accuracy": d["ann_accuracy"], "float_snn_accuracy": d["float_snn_accuracy"],
            "int_snn_accuracy": d["int_snn_accuracy"],
            "timesteps_within_1_point": ev.steps_within(1.0),
            "events_per_inference": d["events_per_inference"],
            "neurons": len(net.neurons), "synapses": len(net.synapses),
            "curve": d["curve"], "seconds": round(time.perf_counter() - t0, 2), "machine": machine,
        }
        sys.stdout.write(json.dumps(line) + "\n")
        sys.stdout.flush()
    return 0
