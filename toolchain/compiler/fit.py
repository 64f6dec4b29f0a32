"""The fit policy: one function that takes any network to a core.

:func:`fit` is what every command that puts a network on a core uses (``compile``, ``verify
--network``, ``build --network``, ``deploy``/``run`` of a network file, the trainers):

1. the network **as it is**, on the first core of the list whose design-rule check it passes
   (nothing is changed, so every neuron id and value is the user's own);
2. else the network **compiled** (:func:`~spikeforge.toolchain.compiler.compile_network`:
   exact passes, quantization only if the network is not integer or too wide) for the first
   core of the list it compiles for;
3. else a :class:`~spikeforge.toolchain.compiler.CompileError` with the reason per core.

Give the cores smallest first and the smallest that works is picked. The compiler sits below
the board table, so it takes :class:`~spikeforge.hdl.config.CoreConfig`\\ s: a caller with a
board resolves it (:func:`spikeforge.firmware.boards.resolve_target`) and, for a baked build,
passes the board's :attr:`~spikeforge.firmware.boards.Board.baked_presets` with ``bake=True``.

Also here: writing a compile result to a file (:func:`write_compiled`): one core image, or a
deployment document (:data:`DEPLOYMENT_FORMAT`) for a network split over several cores.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from spikeforge.hdl.config import PRESETS, CoreConfig
from spikeforge.hdl.image import CoreImage, lower
from spikeforge.toolchain.fsutil import write_atomic
from spikeforge.toolchain.ir import Network

from .drc import design_rule_check
from .lower import CompileResult, compile_network
from .passes import CompileError

__all__ = ["DEPLOYMENT_FORMAT", "FitResult", "NotBakeableError", "deployment_document", "fit", "write_compiled"]

log = logging.getLogger(__name__)

#: ``format`` of a deployment document: the images and routes of a multi-core compile.
DEPLOYMENT_FORMAT = "spikeforge.deployment"


class NotBakeableError(CompileError):
    """A core keeps memories in SPRAM, which an iCE40 bitstream cannot initialise."""


@dataclass
class FitResult:
    """What :func:`fit` chose.

    Attributes
    ----------
    network
        The network that runs on the core: the source itself when it fit as it is, else the
        compiled network.
    config
        The core it fits.
    compiled
        The compile result, or None when the source fit as it is.
    """

    network: Network
    config: CoreConfig
    compiled: CompileResult | None = None

    @property
    def image(self) -> CoreImage:
        """The one-core image of :attr:`network` on :attr:`config`."""
        return lower(self.network, self.config) if self.compiled is None else self.compiled.image


def _check_bakeable(cfg: CoreConfig) -> None:
    if cfg.spram:
        raise NotBakeableError(
            f"core {cfg.name!r} keeps {' and '.join(cfg.spram)} in SPRAM, which the iCE40 bitstream cannot "
            "initialise, so a network cannot be baked into it")


def fit(net: Network, configs: CoreConfig | Sequence[CoreConfig] | None = None, *, prune: bool = True,
        bake: bool = False) -> FitResult:
    """Take ``net`` to the first core of ``configs`` it fits, as it is or compiled.

    Parameters
    ----------
    net
        Any valid network (float or integer, any delays and size).
    configs
        One core, or candidate cores smallest first (default: every preset, smallest first).
    prune
        Let the compiler drop dead neurons and inert synapses (False keeps every source neuron
        on the core, e.g. to check each of them against the reference model).
    bake
        The network goes into a bitstream's memory init: refuse cores with SPRAM memories.

    Returns
    -------
    FitResult

    Raises
    ------
    NotBakeableError
        ``bake`` and a core with SPRAM memories.
    CompileError
        The network fits none of the cores even compiled (the reason per core).
    """
    cfgs = list(PRESETS.values()) if configs is None else [configs] if isinstance(configs, CoreConfig) \
        else list(configs)
    if not cfgs:
        raise ValueError("fit: no core to fit")
    if bake:
        for c in cfgs:
            _check_bakeable(c)
    for c in cfgs:
        if design_rule_check(net, c).ok:
            return FitResult(net, c)
    errors = []
    for c in cfgs:
        try:
            res = compile_network(net, c, prune=prune)
        except CompileError as e:
            errors.append(f"{c.name}: {e}")
            continue
        q = res.report["quantization"]
        log.warning("the network does not fit core %r as it is: compiled it (%d relays, quantized %s)",
                    c.name, res.report["compiled"]["relays"], "exactly" if q.get("exact", True) else
                    f"at scale {min(q['scales']):.4g}: input values are taken in the compiled network's units")
        return FitResult(res.network, c, res)
    raise CompileError("the network fits no core even after compiling: " + "; ".join(errors)
                       + ("" if len(cfgs) == 1 else f" (cores tried: {', '.join(c.name for c in cfgs)})"))


def deployment_document(result: CompileResult) -> dict[str, Any]:
    """The JSON document of a compile: its core image, or a deployment of several images.

    A deployment is ``{"format": DEPLOYMENT_FORMAT, "version": 1, "images": [...], "routes":
    [...]}``, each route ``{src_core, src, dst_core, dst, dst_port, weight, delay}``.
    """
    if len(result.images) == 1:
        return result.image.to_dict()
    return {"format": DEPLOYMENT_FORMAT, "version": 1, "images": [img.to_dict() for img in result.images],
            "routes": [r.to_dict() for r in result.routes]}


def write_compiled(result: CompileResult, path: str | Path) -> None:
    """Write :func:`deployment_document` of ``result`` to ``path`` (replaced atomically)."""
    write_atomic(path, json.dumps(deployment_document(result), separators=(",", ":")) + "\n")
