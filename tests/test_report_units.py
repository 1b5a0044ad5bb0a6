"""Every value on the report page goes through one formatting function, ``units.human``:
no exponent notation, times and memory in the unit that reads best, counts with separators."""

import math

import pytest

from ampcore.core.units import human, human_change

CASES = [
    # value, unit, shown
    (1712.0, "ms", "1.71 s"),  # was "1.71e+03 ms"
    (0.000123, "s", "123 µs"),
    (0.8, "s", "800 ms"),
    (0.9996, "s", "1.00 s"),  # rounds up into the next unit, never "1000 ms"
    (4.2e-8, "s", "42.0 ns"),
    (90.0, "s", "1.50 min"),
    (7200.0, "s", "2.00 h"),
    (0.0, "s", "0 s"),
    (20480.0, "MiB", "20.0 GiB"),
    (512.0, "MiB", "512 MiB"),
    (0.5, "MiB", "512 KiB"),
    (1234567.0, "", "1,234,567"),  # a count
    (12345.6, "", "12,346"),
    (0.9012, "", "0.9012"),  # an accuracy keeps its digits
    (3.0, "", "3"),
    (1.9345, "x", "1.93x"),
    (None, "s", "-"),
    (math.nan, "ms", "-"),
    (math.inf, "", "-"),
]


@pytest.mark.parametrize("value, unit, expected", CASES)
def test_human_units(value, unit, expected):
    assert human(value, unit) == expected


@pytest.mark.parametrize("value, unit", [(v, u) for v, u, _ in CASES if v is not None]
                         + [(1e-12, "s"), (1e12, ""), (3e9, "MiB"), (1e-7, "")])
def test_never_exponent_notation(value, unit):
    text = human(value, unit)
    assert "e+" not in text and "e-" not in text


def test_negative_control_python_formatting_would_fail():
    """The case the report used to print: plain ``.3g`` gives exponent notation."""
    assert f"{1712.0:.3g} ms" == "1.71e+03 ms"
    assert human(1712.0, "ms") != f"{1712.0:.3g} ms"


@pytest.mark.parametrize("change, unit, relative, expected", [
    (0.123, "", True, "+12.3 %"), (-0.05, "", False, "-0.05"), (2048.0, "MiB", False, "+2.00 GiB"),
    (0.0, "", False, "0"), (None, "", True, "-")])
def test_human_change(change, unit, relative, expected):
    assert human_change(change, unit, relative) == expected
