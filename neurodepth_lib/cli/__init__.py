"""The ``neurodepth`` command: one sub-command per job, each argument parsing plus one call into the library.

    neurodepth generate --cell l5pc --condition NMDA --trials 64 --duration-ms 6000 --seed 1 --out data/nmda
    neurodepth notebooks --scale quick --out outputs
    neurodepth train data/nmda_train --valid data/nmda_valid --arch lab --scale lab --out runs/nmda_lab
    neurodepth evaluate runs/nmda_lab data/nmda_test --json runs/nmda_lab.test.json

The sub-commands live beside this file, grouped by the layer they call: ``_data`` (generate, reencode,
assets), ``_notebooks``, ``_fit`` (train), ``_scoring`` (evaluate) and ``_studies`` (sweep, how-deep);
``_shell`` holds what they share. Each sub-command is an ``add_<name>(subparsers)`` function that registers
its arguments and sets ``func`` (a function of the parsed arguments returning an exit code);
:data:`SUBCOMMANDS` lists them in the order ``neurodepth --help`` shows. To add one, write ``add_<name>`` in
the module of the layer it calls and append it there. A flag the user did not give is not forwarded, so the
library's defaults and checks apply (``neurodepth train``'s flags are named after the fields of
:class:`neurodepth_lib.fit.FitSpec`). Errors a user can fix (a malformed flag, or a library ``ValueError``,
``TypeError``, ``FileNotFoundError``, ``IntegrityError`` or ``BusyError``) print one line
``neurodepth COMMAND: error: ...`` and exit with 2, before anything is written; any other error is a bug: one
line saying so and where its full traceback was written, exit 1 (``NEURODEPTH_DEBUG=1`` raises it instead).
"""
from __future__ import annotations

import argparse
import os
import sys
import tempfile
import traceback

from .. import __version__, _io
from ._data import add_assets, add_generate, add_reencode
from ._fit import add_train
from ._notebooks import add_notebooks
from ._scoring import add_evaluate
from ._shell import Parser, UsageError
from ._studies import add_how_deep, add_sweep

# The library's layers load numpy, h5py, NEURON or torch (up to seconds): each sub-command imports the layer
# it calls inside its function, so that `neurodepth --help` stays fast.

__all__ = ["main", "build_parser", "SUBCOMMANDS", "UsageError"]

SUBCOMMANDS = [add_generate, add_reencode, add_notebooks, add_train, add_evaluate, add_sweep, add_how_deep, add_assets]


def build_parser() -> argparse.ArgumentParser:
    """The ``neurodepth`` parser with every sub-command of :data:`SUBCOMMANDS`."""
    parser = Parser(
        prog="neurodepth",
        description="Reproduce Beniaguev, Segev & London (2021): single cortical neurons as deep networks.")
    parser.add_argument("--version", action="version", version=f"neurodepth {__version__}")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    for add in SUBCOMMANDS:
        add(subparsers)
    return parser


def _user_error(args, err: Exception) -> int:
    """One clear line, not a traceback; a library error that names a field (``FitSpecError.field``) shows
    the flag that sets it."""
    text, field = " ".join(str(err).split()) or type(err).__name__, getattr(err, "field", None)
    flag = args.flags.get(field) if field else None
    if flag and text.startswith(field):
        text = flag + text[len(field):]
    print(f"neurodepth {args.command}: error: {text}", file=sys.stderr)
    return 2


def _internal_error(command: str, err: BaseException) -> int:
    """A bug, not a user error: one line, and the full traceback in a file (its path printed)."""
    text = "".join(traceback.format_exception(type(err), err, err.__traceback__))
    try:
        fd, path = tempfile.mkstemp(prefix="neurodepth-traceback-", suffix=".txt")
        with os.fdopen(fd, "w") as fh:
            fh.write(text)
        where = f"full traceback in {path}"
    except OSError:  # pragma: no cover - no writable temp dir: the traceback goes to stderr after all
        where = "traceback:\n" + text
    message = str(err).splitlines()[0] if str(err) else ""
    print(f"neurodepth {command}: internal error: {type(err).__name__}: {message} ({where}; please report it)",
          file=sys.stderr)
    return 1


def main(argv=None) -> int:
    """Entry point of the ``neurodepth`` command; returns the exit code."""
    parser = build_parser()
    argv = list(sys.argv[1:] if argv is None else argv)
    try:
        args = parser.parse_args(argv)
    except UsageError as err:  # a malformed command line: one line, nothing run
        print(f"{err.prog}: error: {err}", file=sys.stderr)
        return 2
    args.argv = argv  # recorded in what the command makes (provenance)
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    # loaded only now (h5py, filelock), like every layer the command calls
    from ..data.shards import IntegrityError

    try:
        return int(args.func(args) or 0)
    except (ValueError, TypeError, FileNotFoundError, IntegrityError, _io.BusyError) as err:  # bad arguments
        return _user_error(args, err)
    except UsageError as err:  # e.g. `assets regenerate` running a recorded command
        print(f"{err.prog}: error: {err}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"neurodepth {args.command}: interrupted; rerun the same command to resume", file=sys.stderr)
        return 130
    except Exception as err:
        if os.environ.get("NEURODEPTH_DEBUG"):
            raise
        return _internal_error(args.command, err)

