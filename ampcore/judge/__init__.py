"""Judging runs: the metrics the gate knows, the records a session saves, the pass/fail rules
and the speedup, and the result tables."""
