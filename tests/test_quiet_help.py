"""``ampcore --help`` (and ``python -m ampcore.history --help``) list every subcommand and print
plain text: no reST double backquotes from the docstrings the help is made of."""

import subprocess
import sys

import pytest

from ampcore.cli import build_parser
from ampcore.history import __main__ as history_main
from ampcore.history.parsers import plain

COMMANDS = ["run", "inject", "compare", "report", "calibrate"]


def subcommands(parser):
    action = next(a for a in parser._actions if a.dest == "command")
    return action.choices


def test_top_level_help_lists_every_subcommand_in_plain_text():
    text = build_parser().format_help()
    assert "``" not in text
    description = text.split("\n\n")[1]
    for command in COMMANDS:
        assert f" {command} " in description + " ", description
        assert f"\n    {command}" in text, text


@pytest.mark.parametrize("command", COMMANDS)
def test_every_subcommand_help_is_plain_text(command):
    parser = subcommands(build_parser())[command]
    text = parser.format_help()
    assert "``" not in text


def test_the_history_entry_point_help_is_plain_text(capsys):
    with pytest.raises(SystemExit) as exit_:
        history_main.main(["--help"])
    assert exit_.value.code == 0
    out = capsys.readouterr().out
    assert "``" not in out
    assert all(command in out for command in ["compare", "report", "calibrate"])


def test_plain_strips_double_backquotes_only():
    assert plain("see ``ampcore run`` and `x`") == "see ampcore run and `x`"
    assert plain(None) is None


def test_python_m_ampcore_help_in_a_fresh_process():
    proc = subprocess.run([sys.executable, "-m", "ampcore", "--help"], capture_output=True,
                          text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert "``" not in proc.stdout and "inject" in proc.stdout.split("\n\n")[1]
