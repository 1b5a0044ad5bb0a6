"""Measuring instruments, independent of what is trained: device-correct timing, statistics,
FLOP counts, deterministic step counters, the step probe and the recorded environment."""
