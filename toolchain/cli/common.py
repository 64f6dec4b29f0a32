"""What every command module shares: loading networks and inputs, the ``--target`` option and
its resolution, the JSON-line printer, :class:`UsageError` and the parser class.

Command modules import this module and library code, never each other.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any, NoReturn

from spikeforge.firmware.boards import Target, board_names, resolve_target
from spikeforge.hdl.config import PRESETS
from spikeforge.toolchain.ir import Network, read_json_file
from spikeforge.toolchain.reference import InputEvent, SimResult
from spikeforge.toolchain.tennlab import NETWORK_FORMATS as FORMATS
from spikeforge.toolchain.tennlab import load_any

__all__ = [
    "FORMATS",
    "Parser",
    "UsageError",
    "add_target_option",
    "deprecated_alias",
    "emit",
    "load_any",
    "load_inputs",
    "summary",
    "target",
]

log = logging.getLogger("spikeforge")

#: Network file formats ``--format`` accepts.
class UsageError(Exception):
    """A bad command line, file or option: reported in one line, exit code 2."""


class Parser(argparse.ArgumentParser):
    """An ArgumentParser whose errors are one line (no usage dump) and do not exit."""

    def error(self, message: str) -> NoReturn:
        raise UsageError(f"{message} (see '{self.prog} --help')")


# ----------------------------------------------------------------------------- loading
def load_inputs(path: str) -> list[InputEvent]:
    """An inputs file: a JSON array of ``[input_index, time, value]`` integer triples."""
    p = Path(path)
    doc = read_json_file(p, UsageError, "inputs file")
    if not isinstance(doc, list):
        raise UsageError(f"{p}: inputs file holds a {type(doc).__name__}; expected a JSON array of "
                         "[input_index, time, value] triples")
    out = []
    for k, item in enumerate(doc):
        if not (isinstance(item, list) and len(item) == 3):
            raise UsageError(f"{p}: input #{k} = {json.dumps(item)} is not an [input_index, time, value] triple")
        for name, v in zip(("input_index", "time", "value"), item, strict=True):
            if not isinstance(v, int) or isinstance(v, bool):
                raise UsageError(f"{p}: input #{k}: {name} = {json.dumps(v)} is not an integer")
        out.append((item[0], item[1], item[2]))
    return out


def summary(net: Network, res: SimResult) -> str:
    """The text report of a run (``simulate`` and ``run`` print the same)."""
    counts = res.fire_counts
    lines = [
        f"network: {len(net.neurons)} neurons, {len(net.synapses)} synapses, "
        f"{len(net.inputs)} inputs, {len(net.outputs)} outputs",
        f"steps: {res.steps}",
        f"spikes: {len(res.spike_times)} (synaptic events: {res.events})",
    ]
    if net.outputs:
        lines.append("output spikes:")
        width = max(len(p.name) for p in net.outputs)
        for p in net.outputs:
            lines.append(f"  {p.name:<{width}}  neuron {p.neuron}: {counts[p.neuron]}")
    return "\n".join(lines) + "\n"


# ----------------------------------------------------------------------------- printing
def emit(figures: Iterable[dict[str, Any]] | dict[str, Any]) -> int:
    """Print each figure as one JSON line as soon as it is ready; return exit code 0."""
    for doc in [figures] if isinstance(figures, dict) else figures:
        sys.stdout.write(json.dumps(doc) + "\n")
        sys.stdout.flush()
    return 0


# ----------------------------------------------------------------------------- options
class _Deprecated(argparse.Action):
    """A hidden old option spelling: stores into the new option's dest and logs a warning."""

    def __init__(self, option_strings: Sequence[str], dest: str, new: str = "", **kw: Any) -> None:
        self.new = new
        super().__init__(option_strings, dest, help=argparse.SUPPRESS, **kw)

    def __call__(self, parser: argparse.ArgumentParser, namespace: argparse.Namespace, values: Any,
                 option_string: str | None = None) -> None:
        log.warning("%s is deprecated; use %s", option_string, self.new)
        setattr(namespace, self.dest, values)
        setattr(namespace, f"{self.dest}_spelling", option_string)


def deprecated_alias(p: argparse.ArgumentParser, old: str, dest: str, new: str) -> None:
    """Accept ``old`` as a hidden, deprecated spelling of the option that stores into ``dest``."""
    p.add_argument(old, dest=dest, action=_Deprecated, new=new, default=argparse.SUPPRESS)


_TARGET_HELP = (f"a board ({', '.join(board_names(aliases=True))}: its default core), BOARD:CORE (e.g. "
                f"icebreaker:tiny), a core preset ({', '.join(PRESETS)}) or a CoreConfig JSON file")


def add_target_option(p: argparse.ArgumentParser, default: str | None, what: str = "the core",
                      *, config_alias: bool = True) -> None:
    """Add ``--target`` (a board, BOARD:CORE, a preset or a config file) to ``p``; with
    ``config_alias`` the old ``--config`` spelling is a hidden deprecated alias."""
    p.add_argument("--target", default=default, metavar="TARGET",
                   help=f"{what}: {_TARGET_HELP} (default: {default or 'see above'})")
    if config_alias:
        deprecated_alias(p, "--config", "target", "--target")


def target(args: argparse.Namespace, spec: str | None = None) -> Target:
    """Resolve ``args.target`` (or ``spec``) with :func:`resolve_target`; errors are usage errors."""
    spec = args.target if spec is None else spec
    try:
        return resolve_target(spec, getattr(args, "target_spelling", None) or "--target")
    except ValueError as e:
        raise UsageError(str(e)) from None
