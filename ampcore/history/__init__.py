"""Saved benchmark histories: reading pytest-benchmark storage, comparing runs, reporting.

Never writes to the storage it reads."""
