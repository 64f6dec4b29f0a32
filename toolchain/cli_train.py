"""``spikeforge train TRAINER …``: the trainers' command group.

Each trainer lives in its own CLI module with an ``add_parser(train_sub)`` function that adds
its sub-command to the group; :data:`TRAINERS` lists those modules (imported lazily, so
``spikeforge --help`` stays fast).
"""

from __future__ import annotations

import argparse
import importlib

__all__ = ["TRAINERS", "add_train_parser"]

#: CLI modules (relative to this package) whose ``add_parser(train_sub)`` adds one trainer.
TRAINERS: tuple[str, ...] = ("cli_convert", "cli_evolve")


def add_train_parser(sub: argparse._SubParsersAction) -> None:
    """Add ``train`` and every trainer in :data:`TRAINERS` under it."""
    tp = sub.add_parser(
        "train", help="train a network for a task (evolution, ANN-to-SNN conversion)",
        description="Train a spiking network that fits a core. Each trainer writes the best "
                    "network as spikeforge JSON, with its encoder and decoder in the metadata.",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    tsub = tp.add_subparsers(dest="trainer", metavar="TRAINER", required=True)
    for name in TRAINERS:
        importlib.import_module(f"{__package__}.{name}").add_parser(tsub)
