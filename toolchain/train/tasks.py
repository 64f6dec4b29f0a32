"""Tasks for the evolutionary trainer: what a network is scored on.

The Task protocol (duck-typed; this is the whole contract)
==========================================================

A task is any object with

``name: str``
    Short name, recorded in the trained network's provenance.
``n_inputs: int``, ``n_outputs: int``
    Input and output ports every genome gets (in port order).
``evaluate(networks: Sequence[Network], seed: int) -> np.ndarray``
    One fitness per network, **higher is better**, as a float array of ``len(networks)``.
    ``seed`` changes every generation and is the same for every network of a generation;
    a network's fitness must depend only on (network, seed), never on which other networks
    share the call (the trainer splits a population over processes and machines).
    The trainer evaluates the whole population in one call (or one call per worker), so a
    task should batch: :func:`evaluate_classification` and :class:`CartPoleTask` run the
    population × the data on :class:`~spikeforge.toolchain.reference.ReferenceSimulator`
    in one vectorised pass.

and optionally

``codec() -> tuple[Encoder, Decoder]``
    The encoder/decoder (:mod:`spikeforge.toolchain.codec`) recorded in every genome's
    ``metadata["io"]`` with :func:`~spikeforge.toolchain.codec.attach_io`, so a deployed
    network carries its I/O meaning. Their port counts must equal ``n_inputs``/``n_outputs``.
``metadata: dict``
    More JSON-able metadata put in every genome (e.g. ``"preprocess"``: how raw features are
    scaled before the encoder, see :func:`preprocess`).
``info(network) -> dict``
    JSON-able facts about a trained network (test accuracy, unseen-seed episodes); the
    trainer records them in the provenance and prints them.
``new_network() -> Network``
    The starting I/O of every genome: named ports on the first ``n_inputs`` neurons (inputs,
    port order) and the next ``n_outputs`` (outputs), with their parameters and metadata (the
    trainer keeps the input neurons' parameters fixed and evolves everything else). Without
    it, inputs are θ = 1 relays ``in<k>`` and outputs ``out<k>``.

A task object must be picklable to run on worker processes or a Dask cluster (a module-level
class or function is).

Plug-ins: ``module:callable`` (:func:`load_task`) names either a Task class / factory called
with no arguments, or a plain fitness function ``f(networks, seed) -> fitnesses`` that
:class:`FunctionTask` wraps with the declared ``n_inputs``/``n_outputs`` (from the function's
``n_inputs``/``n_outputs`` attributes or the CLI's ``--inputs``/``--outputs``).

Built-in tasks (:data:`BUILTIN_TASKS`): ``xor`` (4 samples, for tests), ``breast-cancer``
(scikit-learn's copy of the Wisconsin diagnostic data, stratified 80/20 split, seed 0;
fitness = training accuracy, ``info`` gives test accuracy) and ``cartpole`` (a numpy
cart-pole with gymnasium's CartPole-v1 equations and termination, many episodes in lock-step;
fitness = mean fraction of 500 steps balanced).
"""

from __future__ import annotations

import importlib
import inspect
import logging
import math
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

import numpy as np

from spikeforge.toolchain.codec import (
    Decoder,
    Encoder,
    FlipFlopEncoder,
    RateEncoder,
    WTADecoder,
)
from spikeforge.toolchain.ir import Network, Neuron, Port
from spikeforge.toolchain.reference import DEFAULT_POTENTIAL_BITS, ReferenceSimulator

__all__ = [
    "BUILTIN_TASKS",
    "BreastCancerTask",
    "CartPoleTask",
    "ClassificationTask",
    "FunctionTask",
    "Task",
    "TaskError",
    "import_plugin",
    "VecCartPole",
    "XorTask",
    "evaluate_classification",
    "load_task",
    "preprocess",
    "run_windows",
]

log = logging.getLogger(__name__)

#: Global neurons (runs × neurons) per simulator pass; bounds memory (~70 bytes each).
MAX_GLOBAL_NEURONS = 400_000


class TaskError(ValueError):
    """A task cannot be built or loaded (the message says which and how to fix it)."""


@runtime_checkable
class Task(Protocol):
    """The protocol a task follows (see the module docstring for the optional members)."""

    name: str
    n_inputs: int
    n_outputs: int

    def evaluate(self, networks: Sequence[Network], seed: int) -> np.ndarray: ...


# --------------------------------------------------------------------------- helpers
def preprocess(x: np.ndarray, spec: dict[str, Any]) -> np.ndarray:
    """Apply a ``metadata["preprocess"]`` spec to raw values ``x`` (``[..., n_values]``).

    ``{"kind": "affine", "offset": [...], "scale": [...]}`` maps ``x`` to
    ``(x - offset) / scale`` (then the encoder clips to its ``[lo, hi]``).
    """
    if spec.get("kind") != "affine":
        raise TaskError(f"preprocess kind {spec.get('kind')!r} is unknown; allowed: 'affine'")
    return (np.asarray(x, dtype=float) - np.asarray(spec["offset"])) / np.asarray(spec["scale"])


def _output_columns(networks: Sequence[Network]) -> np.ndarray:
    """``[P, max_neurons]``: output column of each neuron position (-1 if not an output)."""
    width = max(len(n.neurons) for n in networks)
    cols = np.full((len(networks), width), -1, dtype=np.int64)
    for p, net in enumerate(networks):
        pos = net.index_of()
        for k, port in enumerate(net.outputs):
            cols[p, pos[port.neuron]] = k
    return cols


def _eval_view(net: Network) -> Network:
    """``net`` for evaluation: input neurons without synapses out are merged into one sink.

    Such an input neuron has no synapses in or out (a trainer's inputs receive none), so it
    can change no other neuron; its port is rebound to a sink neuron without synapses (it may
    fire, but reaches nothing). Every other neuron, and every output spike, is unchanged; the
    simulator just has fewer neurons to step (evolved networks often use few of many inputs).
    """
    pre = {s.pre for s in net.synapses}
    post = {s.post for s in net.synapses}
    outs = {p.neuron for p in net.outputs}
    dead = {p.neuron for p in net.inputs} - pre - post - outs
    if len(dead) < 2:
        return net
    keep = [n for n in net.neurons if n.id not in dead]
    sink = max(net.neuron_ids) + 1
    inputs = [Port(p.name, sink if p.neuron in dead else p.neuron) for p in net.inputs]
    return Network(neurons=keep + [Neuron(id=sink, threshold=1)], synapses=net.synapses, inputs=inputs,
                   outputs=net.outputs)


def _padded(networks: Sequence[Network]) -> list[Network]:
    """Networks for one simulator pass: :func:`_eval_view` of each, padded with silent neurons
    to one size so the simulator takes its fast path.

    A padding neuron has no synapses, no bias and no port: it is never touched and never
    fires, so every real neuron's behaviour is unchanged.
    """
    networks = [_eval_view(n) for n in networks]
    width = max(len(n.neurons) for n in networks)
    out = []
    for net in networks:
        if len(net.neurons) == width:
            out.append(net)
            continue
        pad = Network(neurons=list(net.neurons), synapses=net.synapses, inputs=net.inputs,
                      outputs=net.outputs)
        top = max(net.neuron_ids, default=-1)
        for k in range(width - len(net.neurons)):
            pad.add_neuron(top + 1 + k)
        out.append(pad)
    return out


def run_windows(sim: ReferenceSimulator, cols: np.ndarray, runs_per_net: int, steps: int,
                n_outputs: int) -> np.ndarray:
    """Run ``steps`` steps and return the output raster ``[runs, steps, n_outputs]`` of them.

    Parameters
    ----------
    sim
        The simulator; run ``r`` belongs to network ``r // runs_per_net``.
    cols
        :func:`_output_columns` of the networks.
    runs_per_net
        Runs of each network (samples or episodes).
    steps
        Window length.
    n_outputs
        Output ports.
    """
    t0 = sim.t
    sim.run(steps)
    t, run, local = sim.spike_arrays(since=t0)
    col = cols[run // runs_per_net, local]
    keep = col >= 0
    raster = np.zeros((sim.runs, steps, n_outputs), dtype=bool)
    raster[run[keep], t[keep] - t0, col[keep]] = True
    return raster


def evaluate_classification(networks: Sequence[Network], events: tuple[np.ndarray, ...],
                            n_samples: int, labels: np.ndarray, steps: int, decoder: Decoder,
                            potential_bits: int = DEFAULT_POTENTIAL_BITS,
                            margin_weight: float = 0.0) -> np.ndarray:
    """Accuracy of each network on encoded samples, the population × samples in one pass.

    Parameters
    ----------
    networks
        The population.
    events
        ``(sample, input_index, time, value)`` arrays (:meth:`Encoder.encode_arrays`).
    n_samples
        Number of samples (runs per network).
    labels
        Class of each sample.
    steps
        Window per sample (each sample runs from a fresh state).
    decoder
        Reads each sample's output raster.
    margin_weight
        ``w`` of a tie-breaking bonus: the result is ``accuracy + w · margin``, where margin is
        the mean over samples of ``(count of the true class's output − the largest other
        count) / steps``, clipped to [-1, 1]. It rewards confident answers, which generalise
        better than answers that win on tie-breaks.

    Returns
    -------
    numpy.ndarray
        ``[len(networks)]`` accuracies in ``[0, 1]`` (plus the margin bonus, if any).
    """
    if not networks:
        return np.zeros(0)
    width = max(len(n.neurons) for n in networks)
    per = max(1, MAX_GLOBAL_NEURONS // max(1, width * n_samples))
    out = np.zeros(len(networks))
    s, i, t, v = events
    for a in range(0, len(networks), per):
        chunk = _padded(networks[a:a + per])
        sim = ReferenceSimulator([net for net in chunk for _ in range(n_samples)], potential_bits)
        p = len(chunk)
        runs = (np.arange(p)[:, None] * n_samples + s[None, :]).reshape(-1)
        sim.add_input_arrays(runs, np.tile(i, p), np.tile(t, p), np.tile(v, p))
        raster = run_windows(sim, _output_columns(chunk), n_samples, steps, decoder.n_outputs)
        pred = decoder.decode_batch(raster).reshape(p, n_samples)
        out[a:a + p] = (pred == labels[None, :]).mean(axis=1)
        if margin_weight:
            counts = raster.sum(axis=1).reshape(p, n_samples, -1).astype(float)
            lab = np.broadcast_to(labels[None, :], (p, n_samples))
            true = np.take_along_axis(counts, lab[..., None], axis=2)[..., 0]
            np.put_along_axis(counts, lab[..., None], -np.inf, axis=2)
            margin = np.clip((true - counts.max(axis=2)) / steps, -1.0, 1.0)
            out[a:a + p] += margin_weight * margin.mean(axis=1)
    return out


# --------------------------------------------------------------------------- classification
class ClassificationTask:
    """Classify feature vectors: fitness = training accuracy, ``info`` adds test accuracy.

    Parameters
    ----------
    name
        Task name.
    x_train, y_train, x_test, y_test
        Raw features ``[samples, n_values]`` and integer labels.
    encoder, decoder
        The codes (``decoder.n_outputs`` = number of classes).
    preprocess_spec
        Optional ``metadata["preprocess"]`` applied to raw features before the encoder.
    margin_weight
        Weight of the confidence bonus in the fitness (see :func:`evaluate_classification`).
    """

    def __init__(self, name: str, x_train: np.ndarray, y_train: np.ndarray, x_test: np.ndarray,
                 y_test: np.ndarray, encoder: Encoder, decoder: Decoder,
                 preprocess_spec: dict[str, Any] | None = None, margin_weight: float = 0.0) -> None:
        self.name = name
        self.margin_weight = margin_weight
        self.encoder, self.decoder = encoder, decoder
        self.n_inputs, self.n_outputs = encoder.n_inputs, decoder.n_outputs
        self.metadata: dict[str, Any] = {"preprocess": preprocess_spec} if preprocess_spec else {}
        self.x_train, self.x_test = np.asarray(x_train, float), np.asarray(x_test, float)
        self.y_train, self.y_test = np.asarray(y_train, np.int64), np.asarray(y_test, np.int64)
        self._train = encoder.encode_arrays(self._prep(self.x_train))
        self._test = encoder.encode_arrays(self._prep(self.x_test)) if len(self.x_test) else None

    def _prep(self, x: np.ndarray) -> np.ndarray:
        spec = self.metadata.get("preprocess")
        return preprocess(x, spec) if spec else x

    def codec(self) -> tuple[Encoder, Decoder]:
        """The encoder and decoder every genome carries."""
        return self.encoder, self.decoder

    def evaluate(self, networks: Sequence[Network], seed: int) -> np.ndarray:
        """Training accuracy (+ margin bonus) of each network (``seed`` is unused: deterministic)."""
        return evaluate_classification(networks, self._train, len(self.y_train), self.y_train,
                                       self.encoder.steps, self.decoder, margin_weight=self.margin_weight)

    def accuracy(self, network: Network, split: str = "test") -> float:
        """Accuracy of one network on ``"train"`` or ``"test"``."""
        ev, y = (self._train, self.y_train) if split == "train" else (self._test, self.y_test)
        if ev is None:
            return float("nan")
        return float(evaluate_classification([network], ev, len(y), y, self.encoder.steps, self.decoder)[0])

    def predict(self, network: Network, x: np.ndarray) -> np.ndarray:
        """Predicted class of each raw sample of ``x`` (one network)."""
        x = np.asarray(x, float).reshape(-1, self.encoder.n_values)
        ev = self.encoder.encode_arrays(self._prep(x))
        sim = ReferenceSimulator([network] * len(x))
        sim.add_input_arrays(*ev)
        raster = run_windows(sim, _output_columns([network]), len(x), self.encoder.steps, self.n_outputs)
        return self.decoder.decode_batch(raster)

    def info(self, network: Network) -> dict[str, Any]:
        """Train and test accuracy, sample counts."""
        return {"train_accuracy": round(self.accuracy(network, "train"), 6),
                "test_accuracy": round(self.accuracy(network, "test"), 6),
                "train_samples": int(len(self.y_train)), "test_samples": int(len(self.y_test))}


class XorTask(ClassificationTask):
    """XOR over spikes: two rate-coded bits, two outputs (WTA; no spike means class 0).

    Tiny (4 samples, 4 steps): the default test run solves it in a few generations.
    """

    def __init__(self, steps: int = 4) -> None:
        x = np.array([[0, 0], [0, 1], [1, 0], [1, 1]], dtype=float)
        y = np.array([0, 1, 1, 0])
        super().__init__("xor", x, y, x, y, RateEncoder(n_values=2, steps=steps, max_spikes=2),
                         WTADecoder(n_outputs=2))


class BreastCancerTask(ClassificationTask):
    """Wisconsin diagnostic breast cancer (scikit-learn's bundled copy; no download).

    30 features, mean ± 1.5 σ of the training split scaled to [0, 1] (recorded as
    ``metadata["preprocess"]``; the encoder clips),
    rate coded over ``steps`` steps with up to ``max_spikes`` spikes; 2 outputs, WTA
    (class 1 = benign, scikit-learn's labels). Stratified 80/20 train/test split with
    ``split_seed``. Fitness = training accuracy + ``margin_weight`` × mean spike-count margin.
    """

    def __init__(self, steps: int = 8, max_spikes: int = 8, split_seed: int = 0,
                 test_size: float = 0.2, margin_weight: float = 0.05) -> None:
        from sklearn.datasets import load_breast_cancer
        from sklearn.model_selection import train_test_split

        data = load_breast_cancer()
        xtr, xte, ytr, yte = train_test_split(data.data, data.target, test_size=test_size,
                                              stratify=data.target, random_state=split_seed)
        # mean ± 1.5 σ of the training split → [0, 1] (clipped): finer steps for the bulk of
        # these heavy-tailed features than min-max scaling gives.
        mu, sd = xtr.mean(axis=0), xtr.std(axis=0)
        sd = np.where(sd > 0, sd, 1.0)
        spec = {"kind": "affine", "offset": (mu - 1.5 * sd).tolist(), "scale": (3.0 * sd).tolist(),
                "features": [str(f) for f in data.feature_names]}
        super().__init__("breast-cancer", xtr, ytr, xte, yte,
                         RateEncoder(n_values=30, steps=steps, max_spikes=max_spikes),
                         WTADecoder(n_outputs=2), spec, margin_weight)
        self.metadata["classes"] = [str(c) for c in data.target_names]
        self.metadata["split"] = {"kind": "stratified", "test_size": test_size, "seed": split_seed}


# --------------------------------------------------------------------------- cart-pole
class VecCartPole:
    """Many CartPole-v1 environments stepped in lock-step (numpy, float64).

    The equations, constants and termination are gymnasium 1.x's ``CartPoleEnv`` (Euler
    integrator; |x| > 2.4 or |θ| > 12° ends an episode; the reset state is uniform in
    ±0.05 drawn from ``default_rng(seed)``, as gymnasium's seeded ``np_random`` draws it);
    ``tests/test_evolve_tasks.py`` checks it step for step against ``gymnasium.make``.

    Parameters
    ----------
    seeds
        One episode seed per environment.
    """

    gravity, masscart, masspole, length, force_mag, tau = 9.8, 1.0, 0.1, 0.5, 10.0, 0.02
    theta_threshold = 12 * 2 * math.pi / 360
    x_threshold = 2.4

    def __init__(self, seeds: Sequence[int]) -> None:
        self.state = np.stack([np.random.default_rng(int(s)).uniform(-0.05, 0.05, size=4) for s in seeds])
        self.done = np.zeros(len(seeds), dtype=bool)
        self.steps = np.zeros(len(seeds), dtype=np.int64)

    def obs(self) -> np.ndarray:
        """Observations ``[envs, 4]`` (float32, like gymnasium's)."""
        return self.state.astype(np.float32)

    def step(self, action: np.ndarray) -> np.ndarray:
        """Push left (0) or right (1) in every running environment; returns ``terminated``.

        Finished environments are frozen (their state and step count no longer change).
        """
        total = self.masspole + self.masscart
        pml = self.masspole * self.length
        x, x_dot, th, th_dot = self.state.T
        force = np.where(np.asarray(action) == 1, self.force_mag, -self.force_mag)
        cos, sin = np.cos(th), np.sin(th)
        temp = (force + pml * np.square(th_dot) * sin) / total
        thacc = (self.gravity * sin - cos * temp) / (self.length * (4.0 / 3.0 - self.masspole * np.square(cos) / total))
        xacc = temp - pml * thacc * cos / total
        new = np.stack([x + self.tau * x_dot, x_dot + self.tau * xacc,
                        th + self.tau * th_dot, th_dot + self.tau * thacc], axis=1)
        live = ~self.done
        self.state[live] = new[live]
        self.steps[live] += 1
        nx_, nth = self.state[:, 0], self.state[:, 2]
        term = (nx_ < -self.x_threshold) | (nx_ > self.x_threshold) | (nth < -self.theta_threshold) | (nth > self.theta_threshold)
        self.done |= term
        return term


#: Observation scale for the cart-pole encoder: ``obs / scale`` is clipped to [-1, 1].
CARTPOLE_SCALE = (2.4, 2.0, 0.2, 2.0)


class CartPoleTask:
    """Balance a pole (CartPole-v1, 500 steps): a closed loop on the reference model.

    Each environment step: the 4 observations, scaled by :data:`CARTPOLE_SCALE`, are
    flip-flop coded (8 inputs: ``+``/``−`` per value, TENNLab's cart-pole code) over
    ``window`` steps; the network runs them (its state carries over, as on hardware); WTA over
    2 outputs picks the push (0 left, 1 right; no spike → left). Fitness = mean over
    ``episodes`` episodes of steps balanced / 500. The episode seeds come from the
    generation seed (below 2**30); ``info`` runs 10 seeds from 2**30 up (never trained on).

    Parameters
    ----------
    episodes
        Episodes per network per generation.
    window
        Reference-model steps per environment step.
    max_spikes
        Spikes for a value at the edge of its range.
    max_steps
        Episode length (500 in CartPole-v1).
    """

    name = "cartpole"
    n_inputs = 8
    n_outputs = 2
    UNSEEN_SEED0 = 1 << 30

    def __init__(self, episodes: int = 8, window: int = 4, max_spikes: int = 4, max_steps: int = 500) -> None:
        self.episodes, self.window, self.max_steps = episodes, window, max_steps
        self.encoder = FlipFlopEncoder(n_values=4, steps=window, lo=-1.0, hi=1.0, max_spikes=max_spikes)
        self.decoder = WTADecoder(n_outputs=2)
        self.metadata = {"preprocess": {"kind": "affine", "offset": [0.0] * 4, "scale": list(CARTPOLE_SCALE),
                                        "features": ["x", "x_dot", "theta", "theta_dot"]},
                         "control": {"window": window, "env": "CartPole-v1", "actions": ["left", "right"]}}

    def codec(self) -> tuple[Encoder, Decoder]:
        """Flip-flop encoder (8 inputs), WTA decoder (2 outputs)."""
        return self.encoder, self.decoder

    def episode_lengths(self, networks: Sequence[Network], seeds: Sequence[int]) -> np.ndarray:
        """``[len(networks), len(seeds)]`` steps balanced (up to ``max_steps``)."""
        p, e = len(networks), len(seeds)
        nets = _padded(networks)
        sim = ReferenceSimulator([n for n in nets for _ in range(e)])
        env = VecCartPole([s for _ in range(p) for s in seeds])
        cols = _output_columns(nets)
        runs = np.arange(p * e)
        scale = np.asarray(CARTPOLE_SCALE)
        for _ in range(self.max_steps):
            live = np.flatnonzero(~env.done)
            if not live.size:
                break
            s, i, t, v = self.encoder.encode_arrays(env.obs()[live] / scale)
            sim.add_input_arrays(runs[live][s], i, t + sim.t, v)
            raster = run_windows(sim, cols, e, self.window, 2)
            env.step(self.decoder.decode_batch(raster))
        return env.steps.reshape(p, e)

    def evaluate(self, networks: Sequence[Network], seed: int) -> np.ndarray:
        """Mean fraction of ``max_steps`` balanced over this generation's episodes."""
        seeds = np.random.default_rng(seed).integers(0, self.UNSEEN_SEED0, self.episodes)
        return self.episode_lengths(networks, seeds.tolist()).mean(axis=1) / self.max_steps

    def info(self, network: Network) -> dict[str, Any]:
        """Steps balanced on 10 seeds never used in training."""
        seeds = list(range(self.UNSEEN_SEED0, self.UNSEEN_SEED0 + 10))
        lengths = self.episode_lengths([network], seeds)[0]
        return {"unseen_seeds": seeds, "unseen_steps": lengths.tolist(),
                "balanced_500": int((lengths >= self.max_steps).sum())}


# --------------------------------------------------------------------------- plug-ins
class FunctionTask:
    """Wrap a plain fitness function ``f(networks, seed) -> fitnesses`` as a task.

    Parameters
    ----------
    fn
        The function (module level, so worker processes can import it).
    n_inputs, n_outputs
        Ports every genome gets.
    name
        Task name (default: the function's ``module:name``).
    """

    def __init__(self, fn: Callable[[Sequence[Network], int], Any], n_inputs: int, n_outputs: int,
                 name: str | None = None) -> None:
        for what, v in (("n_inputs", n_inputs), ("n_outputs", n_outputs)):
            if not isinstance(v, int) or isinstance(v, bool) or v < 1:
                raise TaskError(f"function task: {what} = {v!r} is invalid; allowed: an integer >= 1 "
                                "(give --inputs/--outputs or set the function's attributes)")
        self.fn, self.n_inputs, self.n_outputs = fn, n_inputs, n_outputs
        self.name = name or f"{getattr(fn, '__module__', '?')}:{getattr(fn, '__qualname__', fn)}"

    def evaluate(self, networks: Sequence[Network], seed: int) -> np.ndarray:
        """Call the function."""
        return np.asarray(self.fn(networks, seed), dtype=float)


BUILTIN_TASKS: dict[str, Callable[..., Any]] = {
    "xor": XorTask,
    "breast-cancer": BreastCancerTask,
    "cartpole": CartPoleTask,
    "robot": lambda **options: importlib.import_module("spikeforge.toolchain.robot.task").RobotTask(**options),
}


def _check_task(task: Any, spec: str) -> Any:
    missing = [a for a in ("name", "n_inputs", "n_outputs", "evaluate") if not hasattr(task, a)]
    if missing:
        raise TaskError(f"task {spec!r}: the object has no {', '.join(missing)}; a task needs name, "
                        "n_inputs, n_outputs and evaluate(networks, seed) (see spikeforge.toolchain.train.tasks)")
    return task


def import_plugin(spec: str, error: type[Exception] = TaskError) -> Any:
    """The object a ``module:attr`` plug-in spec names (``module`` may be ``path/to/file.py``;
    ``attr`` may be dotted).

    Plug-ins are trusted code: they run with the user's rights. The working directory (or the
    file's folder) is searched *last*, so a local ``tqdm.py`` never shadows an installed module.

    Raises
    ------
    error
        A spec without ``:``, a module that does not import, or a missing attribute.
    """
    if ":" not in spec:
        raise error(f"plug-in {spec!r} is not module:callable")
    mod_name, _, attr = spec.rpartition(":")
    try:
        if mod_name.endswith(".py"):
            path = Path(mod_name).resolve()
            if str(path.parent) not in sys.path:
                sys.path.append(str(path.parent))
            mod_name = path.stem
        elif "" not in sys.path and "." not in sys.path:
            sys.path.append("")
        obj: Any = importlib.import_module(mod_name)
    except ImportError as e:
        raise error(f"task {spec!r}: cannot import module {mod_name!r}: {e}") from None
    for part in attr.split("."):
        if not hasattr(obj, part):
            raise error(f"task {spec!r}: module {mod_name!r} has no attribute {attr!r}")
        obj = getattr(obj, part)
    return obj


def load_task(spec: str, n_inputs: int | None = None, n_outputs: int | None = None,
              **options: Any) -> Any:
    """Build a task from a built-in name or a ``module:callable`` plug-in.

    Parameters
    ----------
    spec
        ``"xor"``, ``"breast-cancer"``, ``"cartpole"``, or ``"module:callable"`` (``module`` may
        also be a ``path/to/file.py``).
    n_inputs, n_outputs
        For a plain fitness function: its port counts.
    options
        Keyword arguments for a built-in task's constructor.

    Raises
    ------
    TaskError
        Unknown name, module or attribute, or an object that is not a task.
    """
    if spec in BUILTIN_TASKS:
        return BUILTIN_TASKS[spec](**options)
    if ":" not in spec:
        raise TaskError(f"task {spec!r} is unknown; allowed: {', '.join(BUILTIN_TASKS)} or module:callable")
    attr = spec.rpartition(":")[2]
    obj = import_plugin(spec, TaskError)
    if hasattr(obj, "evaluate") and not inspect.isclass(obj):
        return _check_task(obj, spec)
    if not callable(obj):
        raise TaskError(f"task {spec!r}: {attr!r} is not callable")
    if not inspect.isclass(obj):
        try:
            params = [p for p in inspect.signature(obj).parameters.values()
                      if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD) and p.default is p.empty]
        except (TypeError, ValueError):
            params = []
        if len(params) >= 2:
            ni = n_inputs if n_inputs is not None else getattr(obj, "n_inputs", None)
            no = n_outputs if n_outputs is not None else getattr(obj, "n_outputs", None)
            return FunctionTask(obj, ni, no, name=spec)  # type: ignore[arg-type]
    return _check_task(obj(**options), spec)
