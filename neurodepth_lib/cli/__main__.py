"""``python -m neurodepth_lib.cli``: the ``neurodepth`` command."""
import sys

from . import main

if __name__ == "__main__":  # importing this module (pkgutil.walk_packages does) must not run the command
    sys.exit(main())
