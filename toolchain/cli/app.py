"""The ``spikeforge`` command line: the parser, :func:`main`, the error mapping, logging.

Commands
--------
Each command group is a module of this package with a ``register(subparsers)`` function
(:data:`COMMANDS` lists them in ``--help`` order): ``simulate``, ``convert``, ``image``,
``compile``, ``verify``, ``build``, ``board-sim``, ``deploy``/``run``/``flash``, ``train``,
``import``/``export``, ``bench``, ``robot``, ``demo``. A command module imports library code
and :mod:`.common`, never another command module. To add a command: write a module with
``register`` and add its name here.

Errors are one line on stderr, ``spikeforge: error: <message>``, with exit code 2 for bad
files, inputs and options, 1 for failures at run time; ``--debug`` shows the traceback.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import sys
from collections.abc import Sequence

from spikeforge.toolchain.ir import NetworkError

from .common import Parser, UsageError

__all__ = ["COMMANDS", "build_parser", "main"]

PROG = "spikeforge"

#: Command modules of this package, in ``spikeforge --help`` order.
COMMANDS: tuple[str, ...] = ("simulate", "convert", "image", "compile", "verify", "build", "board",
                             "deploy", "train", "interchange", "bench", "robot", "demo")


def build_parser() -> argparse.ArgumentParser:
    """The argument parser (exposed for documentation and tests)."""
    parser = Parser(
        prog=PROG,
        description="spikeforge: spiking networks onto cheap FPGAs, checked spike for spike "
                    "against one bit-exact reference model.",
        epilog="example:\n  spikeforge simulate net.json --inputs in.json --steps 100\n"
               "run 'spikeforge COMMAND --help' for a command's options.",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("-v", "--verbose", action="count", default=0,
                        help="log progress to stderr (-vv for debug detail)")
    parser.add_argument("--debug", action="store_true",
                        help="on an error, show the full traceback instead of one line")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=Parser)
    sub.required = True
    for name in COMMANDS:
        importlib.import_module(f"{__package__}.{name}").register(sub)
    return parser


class _StderrHandler(logging.Handler):
    """Writes to whatever ``sys.stderr`` is at the time of the record (tests swap it)."""

    def emit(self, record: logging.LogRecord) -> None:
        try:
            sys.stderr.write(self.format(record) + "\n")
        except Exception:  # pragma: no cover - logging must never raise
            self.handleError(record)


def _configure_logging(verbosity: int) -> None:
    level = logging.WARNING if verbosity <= 0 else logging.INFO if verbosity == 1 else logging.DEBUG
    root = logging.getLogger("spikeforge")
    root.setLevel(level)
    if not any(isinstance(h, _StderrHandler) for h in root.handlers):
        h = _StderrHandler()
        h.setFormatter(logging.Formatter("spikeforge: %(levelname)s: %(message)s"))
        root.addHandler(h)


def _fail(message: str) -> None:
    sys.stderr.write(f"{PROG}: error: {' '.join(str(message).split())}\n")


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; return the exit code (0 ok, 1 runtime failure, 2 bad input)."""
    argv = list(sys.argv[1:] if argv is None else argv)
    debug = "--debug" in argv
    try:
        _configure_logging(0)  # warnings while parsing (deprecated options) have a handler
        parser = build_parser()
        args = parser.parse_args(argv)
        _configure_logging(args.verbose)
        return int(args.func(args))
    except SystemExit as e:  # --help, --version
        return int(e.code) if isinstance(e.code, int) else 0
    except (UsageError, NetworkError, ValueError) as e:
        if debug:
            raise
        _fail(str(e))
        return 2
    except KeyboardInterrupt:
        _fail("interrupted")
        return 130
    except Exception as e:  # a runtime failure (OSError writing a file, a bug): one line
        if debug:
            raise
        if isinstance(e, OSError):
            _fail(f"{str(e.filename) + ': ' if e.filename else ''}{e.strerror or e}")
        else:
            _fail(f"{type(e).__name__}: {e}")
        return 1


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
