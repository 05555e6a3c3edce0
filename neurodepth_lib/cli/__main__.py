"""``python -m neurodepth_lib.cli``: the ``neurodepth`` command."""
import sys

from . import main

sys.exit(main())
