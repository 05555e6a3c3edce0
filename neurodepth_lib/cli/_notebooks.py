"""``neurodepth notebooks``: every notebook run headless, its receipt checked (:mod:`neurodepth_lib.nb`)."""
from __future__ import annotations

import sys

from ._shell import flags


def add_notebooks(subparsers) -> None:
    p = subparsers.add_parser(
        "notebooks", help="run every notebook headless (papermill) and summarise their receipts",
        description="Execute the numbered notebooks of a source checkout with papermill at one scale, "
                    "writing the executed copies and their JSON receipts into --out, then print one "
                    "summary line per notebook. Exits non-zero when a notebook fails or a self-check "
                    "in a receipt did not pass. Needs the notebooks extra: pip install \"neurodepth[notebooks]\".")
    p.add_argument("--scale", default=None,
                   help="quick, lab or paper (default: $NEURODEPTH_SCALE, else lab)")
    p.add_argument("--out", default="outputs", help="folder for executed notebooks and receipts")
    p.add_argument("--only", nargs="*", default=None,
                   help="notebook name prefixes to run (e.g. 00 01); default all")
    p.add_argument("--dir", default=None,
                   help="folder holding the notebooks (default: the source checkout's notebooks/)")
    p.set_defaults(func=_run_notebooks, flags=flags(p))


def _run_notebooks(args) -> int:
    from .. import nb

    notebooks = nb.list_notebooks(args.dir)
    if not notebooks:
        raise ValueError(f"no numbered notebooks (NN_name.ipynb) in {args.dir or nb.notebooks_dir()}")
    if args.only:
        notebooks = [p for p in notebooks if any(p.stem.startswith(o) for o in args.only)]
        if not notebooks:
            raise ValueError(f"no notebook matches {args.only}")
    receipts = nb.run_all(args.out, scale=args.scale, notebooks=notebooks)
    failed = [r.get("notebook", "?") for r in receipts
              if not r or not all(c["passed"] for c in r.get("checks", []))]
    if failed:
        print(f"self-checks failed or no receipt: {', '.join(failed)}", file=sys.stderr)
        return 1
    return 0
