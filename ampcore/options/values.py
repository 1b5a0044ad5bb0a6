"""The option table's value parsers: text -> value, or ``ValueError`` saying what is expected.

Torch-free like the table (``ampcore.options.table``): the checks that need torch-importing code
(a workload's model, an injection kind) import it only when a value is given.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable
from pathlib import Path

from ampcore.core import registry
from ampcore.core.errors import UsageError
from ampcore.core.profiles import PROFILES

_TRUE, _FALSE = ("1", "true", "yes", "on"), ("0", "false", "no", "off")


class Unknown(ValueError):
    """A parser's message that already names the bad value (no ", got ..." is added)."""


def path(value: str) -> Path:
    return Path(value).expanduser()


def integer(minimum: int) -> Callable[[str], int]:
    def parse(value: str) -> int:
        number = int(value) if value.strip().lstrip("+-").isdigit() else None
        if number is None or number < minimum:
            raise ValueError(f"expected a whole number >= {minimum}")
        return number
    return parse


def real(minimum: float, inclusive: bool) -> Callable[[str], float]:
    bound = f"{'>=' if inclusive else '>'} {minimum:g}"

    def parse(value: str) -> float:
        try:
            number = float(value)
        except ValueError:
            number = math.nan
        if not math.isfinite(number) or number < minimum or (number == minimum and not inclusive):
            raise ValueError(f"expected a finite number {bound}")
        return number
    return parse


def choice(*values: str) -> Callable[[str], str]:
    def parse(value: str) -> str:
        if value.lower() not in values:
            raise ValueError(f"expected one of {', '.join(values)}")
        return value.lower()
    return parse


def flag(value: str) -> bool:
    if value.lower() in _TRUE + _FALSE:
        return value.lower() in _TRUE
    raise ValueError(f"expected one of {', '.join(_TRUE)} (on) or {', '.join(_FALSE)} (off)")


def ids(kind: str, table: str) -> Callable[[str], list[str]]:
    """Ids of the registry ``ampcore.core.registry.<table>``, read when parsing (so an entry
    registered after this module was imported counts); an empty value: its default matrix."""
    def parse(value: str) -> list[str]:
        entries = getattr(registry, table)
        try:
            return registry.expand_ids(value, list(entries), kind, registry.default_ids(entries))
        except UsageError as exc:
            raise Unknown(str(exc)) from None
    return parse


def device_name(value: str) -> str:
    """cpu, cuda or cuda:N: the devices the precision modes and the step timing support (torch
    names more, such as mps or meta, on which training crashes or measures nothing)."""
    name = value.strip().lower()
    if name in ("cpu", "cuda") or (name.startswith("cuda:") and name[5:].isdigit()):
        return name
    raise ValueError("expected cpu, cuda or cuda:N")


def profile_name(value: str) -> str:
    """A profile of ``ampcore.core.profiles``."""
    if value not in PROFILES:
        raise ValueError(f"expected one of {', '.join(PROFILES)}")
    return value


def workload_model(workload: str) -> Callable[[str], str]:
    """A model override of ``workload``, checked by the ``model_parser`` its registry entry
    names (imported, with torch, only now that one is given); without one, any text."""
    def parse(value: str) -> str:
        try:
            registry.workload_entry(workload).parse_model(value)
        except UsageError as exc:
            raise Unknown(str(exc)) from None
        return value
    return parse


def model_overrides(value: str) -> dict[str, str]:
    """``ID=MODEL[,ID=MODEL...]``: a model override for each named workload whose registry
    entry takes one (``run_options`` has "model": a plugin's as well as bert's and llama's),
    each checked by that entry's parser. A comma starts a new pair only before such an id, so a
    model spec may hold commas itself (``llama=llama:hidden=64,layers=2,...``)."""
    takers = [w for w in registry.WORKLOADS if registry.workload_entry(w).accepts("model")]
    if not takers:
        raise Unknown("no registered workload takes a model override")
    pairs = re.split(rf",(?=(?:{'|'.join(map(re.escape, takers))})=)", value.strip())
    overrides: dict[str, str] = {}
    for pair in pairs:
        workload, sep, model = pair.partition("=")
        if not sep or not model:
            raise Unknown(f"{pair!r} is not ID=MODEL (workloads that take a model: "
                          f"{', '.join(takers)})")
        if workload not in takers:
            raise Unknown(f"workload {workload!r} takes no model override (its registry entry's "
                          f"run_options lack 'model'); those that do: {', '.join(takers)}")
        overrides[workload] = workload_model(workload)(model)
    return overrides


def injection_kinds(value: str) -> tuple[str, ...]:
    """Kinds of ``ampcore.train.inject``, imported (with torch) only now that one is named."""
    from ampcore.train.inject import check_kinds

    try:
        return check_kinds(value.replace(",", " ").split())
    except UsageError as exc:
        raise Unknown(str(exc)) from None
