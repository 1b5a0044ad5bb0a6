"""The suite's options: the ``suite`` rows of ``ampcore.options.table`` as pytest options.

Torch-free: the plugin adds and checks its options in every pytest run of a repository with
ampcore installed. A bad value is a pytest usage error (exit status 4) before collection.
"""

from __future__ import annotations

import dataclasses

import pytest

from ampcore.options import table
from ampcore.core import plugins, registry
from ampcore.core.errors import UsageError
from ampcore.core import files
from ampcore.options.settings import Settings
from ampcore.options.table import SUITE, OptionError

GROUP = "ampcore"
GROUP_DESCRIPTION = "AMP training benchmarks (ampcore)"


def dest(option: table.Option) -> str:
    return "amp_" + option.key


def add_options(parser: pytest.Parser) -> None:
    try:  # the help lists the registries' ids, which loads the installed plugins first
        plugins.check()
    except UsageError:
        pass  # a broken plugin: ``resolve`` makes it the session's usage error
    group = parser.getgroup(GROUP, GROUP_DESCRIPTION)
    for option in table.options_for(SUITE):
        help_text = table.argparse_help(option, SUITE)
        if option.kind == "flag":
            group.addoption(option.flag(SUITE), dest=dest(option), action="store_true",
                            default=None, help=help_text)
        else:
            group.addoption(option.flag(SUITE), dest=dest(option), default=None,
                            metavar=option.metavar, help=help_text)


def resolve(config: pytest.Config) -> Settings:
    """The session's option values; a bad one is a ``pytest.UsageError``."""
    given = {o.key: config.getoption(dest(o)) for o in table.options_for(SUITE)}
    try:
        plugins.check()  # a plugin that fails to load, or a duplicate id, stops the session
        settings = table.resolve(SUITE, given)
        # The summary is appended at the session's end: a path that cannot take it fails now.
        files.check_append_file(settings.summary, table.get_option("summary").flag(SUITE), ())
    except (OptionError, UsageError) as exc:
        raise pytest.UsageError(str(exc)) from None
    return dataclasses.replace(settings, precisions=reference_first(settings.precisions))


def reference_first(precisions: list[str]) -> list[str]:
    """Registry order with the reference first: every speedup needs it, so it trains before
    the modes it anchors."""
    order = list(registry.PRECISIONS)
    return sorted(precisions, key=lambda p: (p != registry.REFERENCE_PRECISION, order.index(p)))
