"""The ``spikeforge`` command line: :mod:`.app` (parser, :func:`main`, error mapping, logging),
:mod:`.common` (what commands share) and one module per command group, each with a
``register(subparsers)`` function that adds its commands (listed in :data:`.app.COMMANDS`)."""

from .app import main

__all__ = ["main"]
