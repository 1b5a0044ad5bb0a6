"""The tables of docs/TRUST.md and docs/PERFORMANCE.md, rendered from committed run data
(docs/runs/) with the project's own rules. Each module is a command,
``python -m scripts.tables.NAME ARGS`` from the repository root, and a ``render`` function that
returns the text (the tests assert on it)."""
