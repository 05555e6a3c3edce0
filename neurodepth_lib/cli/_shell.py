"""What every sub-command of the ``neurodepth`` command shares: the parser that reports a malformed command
line as one line, forwarding only the flags a user gave, the Dask client of ``--scheduler``, flag types."""
from __future__ import annotations

import argparse
import contextlib

from .. import _checks, _parallel


class UsageError(Exception):
    """A malformed command line (raised by the parsers instead of printing usage and exiting)."""

    def __init__(self, prog: str, message: str):
        super().__init__(message)
        self.prog = prog


class Parser(argparse.ArgumentParser):
    """argparse, but a malformed command line is one line ``PROG: error: ...`` (no usage block)."""

    def error(self, message):
        raise UsageError(self.prog, message)


def given(**kwargs) -> dict:
    """The keyword arguments whose flags were given (not None): the rest keep the library's defaults."""
    return {k: v for k, v in kwargs.items() if v is not None}


def flags(parser: argparse.ArgumentParser) -> dict:
    """``{dest: flag}`` of a sub-command, to name the flag when a library error names the field it sets."""
    return {a.dest: a.option_strings[0] for a in parser._actions if a.option_strings}


def cluster(address):
    """The Dask client at ``--scheduler`` (closed when the block ends), or None to run locally."""
    return _parallel.dask_client(address) or contextlib.nullcontext()


def int_list(text: str) -> tuple[int, ...]:
    """``45,19,19`` as a tuple of whole numbers (a flag type)."""
    try:
        values = tuple(int(v) for v in str(text).replace(" ", "").split(",") if v)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated whole numbers, got {text!r}") from None
    if not values:
        raise argparse.ArgumentTypeError(f"expected at least one number, got {text!r}")
    return values


def set_threads(threads) -> None:
    """``--threads``: torch's CPU threads (torch loaded only when the flag is given)."""
    if threads is not None:
        import torch

        torch.set_num_threads(_checks.positive_int(threads, "--threads"))
