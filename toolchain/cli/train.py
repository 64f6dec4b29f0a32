"""``spikeforge train evolve`` and ``spikeforge train convert``: the trainers' command group.

``evolve`` trains with :func:`spikeforge.toolchain.train.evolve.evolve` and writes the best
network (IR JSON with its encoder/decoder and provenance), plus a run directory holding the
checkpoint, the fitness plot and the Pareto front. ``convert`` runs
:func:`spikeforge.toolchain.train.pipeline.train_and_convert` (ANN-to-SNN conversion, see
:mod:`spikeforge.toolchain.train.convert`).
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from spikeforge.toolchain.ir import save_network
from spikeforge.toolchain.train.convert import ACTIVATIONS, TASKS, save_curve_plot
from spikeforge.toolchain.train.evolve import EvolveError, evolve, load_checkpoint
from spikeforge.toolchain.train.parallel import make_evaluator
from spikeforge.toolchain.train.pipeline import parse_hidden, train_and_convert
from spikeforge.toolchain.train.task_defaults import default_config, task_defaults
from spikeforge.toolchain.train.tasks import TaskError, load_task

from .common import UsageError, add_target_option, target

__all__ = ["register"]


def register(sub: argparse._SubParsersAction) -> None:
    """Add ``train`` with its trainers ``evolve`` and ``convert``."""
    tp = sub.add_parser(
        "train", help="train a network for a task (evolution, ANN-to-SNN conversion)",
        description="Train a spiking network that fits a core. Each trainer writes the best "
                    "network as spikeforge JSON, with its encoder and decoder in the metadata.",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    tsub = tp.add_subparsers(dest="trainer", metavar="TRAINER", required=True)
    _add_evolve(tsub)
    _add_convert(tsub)
    _add_reservoir(tsub)


# --------------------------------------------------------------------------- evolve
_EVOLVE_DESCRIPTION = """\
Evolve a spiking network for a task (EONS-style: add/remove neurons and synapses, mutate
thresholds, weights, delays, leak; merge crossover; tournament selection with elitism; optional
size penalty and a Pareto front of fitness vs. size). Every individual fits the target core's
field widths and budgets, so the result loads onto the board with no quantization.

Tasks: xor (tiny), breast-cancer (scikit-learn's Wisconsin data, stratified 80/20 split; test
accuracy reported), cartpole (CartPole-v1 dynamics, 500 steps; unseen-seed episodes reported),
or MODULE:CALLABLE - a task class/factory, or a function f(networks, seed) -> fitnesses
(give --inputs/--outputs). Fitness is higher-better.

Evaluation runs the whole population x the data on the batched reference model, on every
local core by default (--workers), or on a Dask cluster (--scheduler). A checkpoint is written
every generation to the run directory; --resume DIR continues exactly."""

_EVOLVE_EPILOG = """\
examples:
  spikeforge train evolve --task breast-cancer --target icebreaker -o bc.json
  spikeforge train evolve --task cartpole -o cartpole.json --workers 2
  spikeforge train evolve --task cartpole -o cp.json --resume cp.json.run --generations 80
  spikeforge train evolve --task mytasks:fitness --inputs 4 --outputs 2 -o net.json
  spikeforge train evolve --task xor --target tiny -o xor.json --scheduler tcp://10.0.0.5:8786"""


def _add_evolve(train_sub: argparse._SubParsersAction) -> None:
    p = train_sub.add_parser("evolve", help="evolutionary training (EONS-style), hardware-aware",
                             description=_EVOLVE_DESCRIPTION, epilog=_EVOLVE_EPILOG,
                             formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--task", default=None, metavar="TASK",
                   help="xor | breast-cancer | cartpole | module:callable (default on --resume: the checkpoint's)")
    add_target_option(p, "icebreaker", "the core the networks must fit", config_alias=False)
    p.add_argument("-o", "--output", required=True, metavar="NETWORK", help="where to write the best network (JSON)")
    p.add_argument("--generations", type=int, default=None, metavar="G", help="generations in total (task default)")
    p.add_argument("--population", type=int, default=None, metavar="P", help="individuals (task default)")
    p.add_argument("--seed", type=int, default=0, help="seed of the run (default: 0)")
    g = p.add_mutually_exclusive_group()
    g.add_argument("--workers", type=int, default=None, metavar="N",
                   help="local worker processes (default: every core; 1: in this process)")
    g.add_argument("--scheduler", default=None, metavar="ADDRESS", help="Dask scheduler address, e.g. tcp://host:8786")
    p.add_argument("--resume", default=None, metavar="DIR", help="continue the run in this run directory")
    p.add_argument("--overwrite", action="store_true",
                   help="start afresh even if the run directory holds a run (default: refuse)")
    p.add_argument("--run-dir", default=None, metavar="DIR",
                   help="checkpoint, fitness.png, pareto.json go here (default: NETWORK.run)")
    p.add_argument("--size-penalty", type=float, default=0.0, metavar="C", help="select on fitness - C * size")
    p.add_argument("--max-neurons", type=int, default=None, help="neuron budget below the core's")
    p.add_argument("--max-synapses", type=int, default=None, help="synapse budget below the core's")
    p.add_argument("--target-fitness", type=float, default=None, metavar="F", help="stop when the best reaches F")
    p.add_argument("--time-limit", type=float, default=None, metavar="S", help="stop after S seconds")
    p.add_argument("--eval-timeout", type=float, default=600.0, metavar="S",
                   help="seconds one batched evaluation may take before it counts as hung (default: 600)")
    p.add_argument("--inputs", type=int, default=None, metavar="N", help="plug-in function: input ports")
    p.add_argument("--outputs", type=int, default=None, metavar="N", help="plug-in function: output ports")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.set_defaults(func=_cmd_evolve)


def _cmd_evolve(args: argparse.Namespace) -> int:
    run_dir = Path(args.resume or args.run_dir or f"{args.output}.run")
    spec = args.task
    if args.resume:
        doc = load_checkpoint(run_dir)
        if spec is not None and spec != doc["task"]:
            raise EvolveError(f"--task {spec} but the checkpoint in {run_dir} is for {doc['task']!r}")
        spec = doc["task"]
        done = int(doc["generation"]) + 1
    elif spec is None:
        raise EvolveError("--task is required (xor, breast-cancer, cartpole or module:callable)")
    defaults = task_defaults(spec)
    generations = args.generations or defaults["generations"]
    if args.resume and generations <= done:
        raise EvolveError(f"{run_dir} already holds {done} generations; give --generations above {done}")
    for name in ("generations", "population", "workers", "max_neurons", "max_synapses"):
        v = getattr(args, name)
        if v is not None and v < 1:
            raise EvolveError(f"--{name.replace('_', '-')} = {v} is invalid; allowed: an integer >= 1")
    try:
        task = load_task(spec, n_inputs=args.inputs, n_outputs=args.outputs)
    except TaskError as e:
        raise EvolveError(str(e)) from None
    core = target(args).config
    config = default_config(spec, population=args.population or defaults["population"],
                            size_penalty=args.size_penalty, max_neurons=args.max_neurons,
                            max_synapses=args.max_synapses)
    goal = args.target_fitness if args.target_fitness is not None else defaults.get("target_fitness")
    t0 = time.perf_counter()
    with make_evaluator(task, args.workers, args.scheduler, args.eval_timeout) as ev:
        res = evolve(task, core, config, generations=generations, seed=args.seed, evaluator=ev,
                     run_dir=run_dir, resume=bool(args.resume), overwrite=args.overwrite,
                     progress=not args.no_progress,
                     target_fitness=goal, task_spec=spec, time_limit=args.time_limit)
    save_network(res.best, args.output)
    net = res.best
    sys.stdout.write(
        f"best network: fitness {res.best_fitness:.6g} (generation {res.best_generation} of {res.generations}), "
        f"{len(net.neurons)} neurons, {len(net.synapses)} synapses, fits core {core.name!r}\n")
    for k, v in res.info.items():
        if not isinstance(v, list):
            sys.stdout.write(f"  {k}: {v}\n")
    if res.errors:
        sys.stdout.write(f"  {len(res.errors)} evaluation errors (first: {res.errors[0]})\n")
    sys.stdout.write(f"wrote {args.output}; run directory {run_dir} (checkpoint.json, fitness.png, pareto.json); "
                     f"{time.perf_counter() - t0:.1f} s\n")
    return 0


# --------------------------------------------------------------------------- convert
_CONVERT_DESCRIPTION = """\
Train a small MLP on a scikit-learn task (offline), convert it to integrate-and-fire neurons
with reset by subtraction (data-based normalisation, biases as the neuron bias, one step per
layer), quantize it to the target core and evaluate every stage on the test split: ANN, float
SNN, integer SNN in the bit-exact reference model, accuracy vs timesteps, synaptic events per
inference. The network is written as spikeforge JSON with its encoder, decoder, latency and
provenance in the metadata."""

_CONVERT_EPILOG = """\
examples:
  spikeforge train convert --task digits --target icebreaker -o digits.json
  spikeforge train convert --task breast-cancer --timesteps 16 -o bc.json --plot bc.png
  spikeforge train convert --task digits --activation softlif --noise 0.1 -o d.json
  spikeforge train convert --task digits --encoding ttfs -o d_ttfs.json
  spikeforge train convert --task digits --weights mlp.npz -o d.json   # trained elsewhere"""


def _add_convert(train_sub: argparse._SubParsersAction) -> None:
    p = train_sub.add_parser("convert", help="ANN-to-SNN conversion (numpy MLP, soft-LIF/ReLU)",
                             description=_CONVERT_DESCRIPTION, epilog=_CONVERT_EPILOG,
                             formatter_class=argparse.RawDescriptionHelpFormatter)
    _convert_options(p)
    p.add_argument("-o", "--output", required=True, metavar="NETWORK", help="network JSON to write")
    p.add_argument("--plot", metavar="PNG", help="write the accuracy-vs-timesteps plot here")
    p.add_argument("--save-weights", metavar="NPZ", help="also write the trained ANN (.npz, no pickle)")
    p.set_defaults(func=_cmd_convert)


def _convert_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--task", choices=TASKS, default="digits", help="dataset (default: digits)")
    p.add_argument("--timesteps", type=int, default=32, metavar="T",
                   help="presentation window per sample (default: 32)")
    add_target_option(p, "icebreaker", "the core the network must fit")
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


def _cmd_convert(args: argparse.Namespace) -> int:
    mlp, net, ev, data = train_and_convert(
        args.task, target(args).config, hidden=parse_hidden(args.hidden), activation=args.activation,
        timesteps=args.timesteps, epochs=args.epochs, noise=args.noise, encoding=args.encoding,
        neuron=args.neuron, percentile=args.percentile, weights=args.weights, seed=args.seed)
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


# --------------------------------------------------------------------------- reservoir
_RESERVOIR_DESCRIPTION = """\
Train a liquid state machine (spikeforge.toolchain.train.reservoir): a seeded integer reservoir
of LIF neurons within the target core's limits, its gains tuned on the reference model to a
target firing rate; a host readout (logistic / ridge) and, for classification, the readout as
output neurons on the core (first-spike decision after a go marker). Tasks: japanese-vowels,
mackey-glass (one-step, host readout), digits-sequence, or MODULE:CALLABLE returning a
SeriesTask. Prints the report as one JSON line."""


def _add_reservoir(train_sub: argparse._SubParsersAction) -> None:
    p = train_sub.add_parser("reservoir", help="liquid state machine with a trained readout",
                             description=_RESERVOIR_DESCRIPTION,
                             formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--task", default="japanese-vowels", help="task name or MODULE:CALLABLE")
    add_target_option(p, "icebreaker", "the core the network must fit")
    p.add_argument("-o", "--output", required=True, metavar="NETWORK", help="network JSON to write")
    p.set_defaults(func=_cmd_reservoir)


def _cmd_reservoir(args: argparse.Namespace) -> int:
    import json

    from spikeforge.toolchain.train.reservoir import (
        ReservoirError,
        SeriesTaskError,
        train_reservoir,
    )

    try:
        net, report = train_reservoir(args.task, target(args).config, progress=True)
    except (ReservoirError, SeriesTaskError) as e:
        raise UsageError(str(e)) from None
    save_network(net, args.output)
    sys.stdout.write(json.dumps(report.to_dict()) + "\n")
    return 0
