"""Tests, laid out like the package: tests/<folder>/ tests neurodepth_lib/<folder>/ (see CONTRIBUTING.md)."""
