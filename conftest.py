"""Test-session set-up shared by unit tests and notebook runs (nbval and papermill).

Notebooks run at quick scale under pytest, and their receipts go to a temporary folder rather than
next to the source notebooks.
"""
import os
import tempfile

os.environ.setdefault("NEURODEPTH_SCALE", "quick")
os.environ.setdefault("NEURODEPTH_RECEIPT_DIR", tempfile.mkdtemp(prefix="neurodepth-receipts-"))
os.environ.setdefault("NEURON_MODULE_OPTIONS", "-nogui")
os.environ.setdefault("MPLBACKEND", "Agg")
