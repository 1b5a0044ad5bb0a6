"""Numbers as a reader wants them, in every output (``compare``'s tables through
``Metric.format``, the report page): one function, ``human``, for every value.

Times move to the unit that keeps them between 1 and 1000 (``1.71e+03 ms`` reads ``1.71 s``,
``0.000123 s`` reads ``123 µs``), memory to the binary unit that does the same, large counts get
thousands separators, and nothing is ever printed in exponent notation."""

from __future__ import annotations

import math
import re

# Each unit in seconds; the ladder, largest first, that a time is shown in.
TIME_UNITS = {"h": 3600.0, "min": 60.0, "s": 1.0, "ms": 1e-3, "µs": 1e-6, "us": 1e-6,
              "ns": 1e-9}
TIME_LADDER = ("h", "min", "s", "ms", "µs", "ns")
# Each unit in bytes; the ladder, largest first.
BYTE_UNITS = {"TiB": 2.0**40, "GiB": 2.0**30, "MiB": 2.0**20, "KiB": 2.0**10, "B": 1.0}
BYTE_LADDER = ("TiB", "GiB", "MiB", "KiB", "B")
EXPONENT = re.compile(r"(?<![\w.])[-+]?\d+(?:\.\d+)?[eE][-+]?\d+(?![\w.])")
SIGNIFICANT = 3  # digits of a value with a unit
SIGNIFICANT_PLAIN = 4  # of a bare number (an accuracy of 0.9012)


def _rounded(value: float, digits: int) -> float:
    """``value`` rounded to ``digits`` significant digits (999.7 ms rounds to 1000 ms, so it
    is then shown as 1.00 s, never as "1000 ms")."""
    return float(f"{value:.{digits}g}") if value else 0.0


def _digits(value: float, digits: int, separators: bool = False) -> str:
    """Fixed-point text with ``digits`` significant digits: no exponent, however large or
    small (``123``, ``1.71``, ``0.000123``); thousands separators when asked."""
    if value == 0:
        return "0"
    decimals = max(0, digits - 1 - math.floor(math.log10(abs(value))))
    return format(value, f"{',' if separators else ''}.{decimals}f")


def _on_ladder(value: float, unit: str, units: dict[str, float], ladder: tuple[str, ...],
               digits: int) -> str:
    """``value`` in ``unit``, moved to the largest unit of ``ladder`` in which it is >= 1."""
    base = _rounded(value * units[unit], digits)
    for name in ladder:
        if abs(base) >= units[name]:
            shown = _rounded(base / units[name], digits)
            return f"{_digits(shown, digits, separators=True)} {name}"
    smallest = ladder[-1]
    return f"{_digits(base / units[smallest], digits)} {smallest}" if base else f"0 {unit}"


def _plain(value: float, unit: str, digits: int) -> str:
    """A count or a bare number: whole numbers exactly with separators (``12,345``), others
    with ``digits`` significant digits, separated from 1,000 up."""
    if value == int(value) and abs(value) < 1e15:
        text = f"{int(value):,}"
    elif abs(value) >= 1000:
        text = f"{value:,.0f}"
    else:  # trailing zeros of a bare number are noise: 0.05, not 0.05000
        text = _digits(_rounded(value, digits), digits)
        text = text.rstrip("0").rstrip(".") if "." in text and unit != "x" else text
    if not unit:
        return text
    return f"{text}{unit}" if unit in ("x", "%") else f"{text} {unit}"


def human(value: float | None, unit: str = "", digits: int | None = None) -> str:
    """``value``, measured in ``unit`` (s, ms, MiB, x, or none), as a reader wants it; ``-``
    when there is none (None, NaN, infinite)."""
    if value is None or not math.isfinite(value):
        return "-"
    if unit in TIME_UNITS:
        return _on_ladder(value, unit, TIME_UNITS, TIME_LADDER, digits or SIGNIFICANT)
    if unit in BYTE_UNITS:
        return _on_ladder(value, unit, BYTE_UNITS, BYTE_LADDER, digits or SIGNIFICANT)
    if unit == "x":
        return _plain(_rounded(value, digits or SIGNIFICANT), unit, digits or SIGNIFICANT)
    return _plain(value, unit, digits or SIGNIFICANT_PLAIN)


def human_change(change: float | None, unit: str = "", relative: bool = True) -> str:
    """A signed change: a fraction in % (``+12.3 %``), or a difference in ``unit``."""
    if change is None or not math.isfinite(change):
        return "-"
    if relative:
        return f"{change * 100:+.1f} %"
    sign = "+" if change > 0 else ("-" if change < 0 else "")
    return sign + human(abs(change), unit)


def human_text(text: str) -> str:
    """``text`` (a verdict's evidence) with every number in exponent notation written out:
    ``p=9.1e-05`` reads ``p=0.000091``."""
    def written(match: re.Match[str]) -> str:
        value = float(match.group())
        mantissa = match.group().lower().split("e")[0]
        digits = len(mantissa.lstrip("-+").replace(".", "").lstrip("0"))
        return _plain(value, "", max(digits, 1))

    return EXPONENT.sub(written, text)
