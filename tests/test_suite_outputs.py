"""What the suite leaves behind: an interrupted session is saved marked incomplete (so that
``ampcore compare`` and ``report`` skip it) and its finished runs are shown as partial; the
``--amp-summary`` file is checked before anything trains; an unused ``--amp-data-dir`` is
said to be unused."""

import json

import pytest

from ampcore.history.storage import read_run
from tests.test_suite import SUITE, make_run, session, suite  # noqa: F401  (the fixture)

pytest_plugins = ["pytester"]

STOP = "def test_zz_stop():\n    raise KeyboardInterrupt\n"  # Ctrl-C after the first run


def test_ctrl_c_saves_the_session_marked_incomplete_and_shows_what_finished(suite, tmp_path):
    storage, summary = tmp_path / "storage", tmp_path / "missing" / "dir" / "summary.md"
    suite.makepyfile(test_zz_stop=STOP)
    result = suite.runpytest_subprocess(
        "-p", "no:cacheprovider", "--amp-profile", "smoke", "--amp-workloads", "resnet18",
        "--amp-precisions", "fp32", "-k", "train or stop", "--benchmark-autosave",
        f"--benchmark-storage=file://{storage}", "--amp-summary", str(summary))
    assert result.ret == pytest.ExitCode.INTERRUPTED
    result.stdout.fnmatch_lines(["*ampcore: AMP training summary*", "*Regular (fp32)*",
                                 "*Interrupted: these are the runs that finished (partial)*"])
    (path,) = storage.rglob("*.json")
    assert json.loads(path.read_text())["machine_info"]["ampcore"]["incomplete"] is True
    run, problems = read_run(path)
    assert run is None and problems[0].message.startswith("interrupted session: marked incomplete")
    # the summary went into a directory that did not exist, instead of crashing at the end
    assert "Interrupted: these are the runs that finished" in summary.read_text()


def test_a_summary_path_that_cannot_be_written_is_a_usage_error(suite, tmp_path):
    (tmp_path / "plain-file").write_text("not a directory")
    target = tmp_path / "plain-file" / "summary.md"
    result = suite.runpytest_subprocess("-p", "no:cacheprovider", "--amp-summary", str(target))
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines([f"*--amp-summary {target} cannot be written*"])
    result.stdout.no_fnmatch_line("*passed*")  # nothing ran


def test_data_dir_with_the_smoke_profile_is_reported_unused(suite, tmp_path):
    result = suite.runpytest_subprocess("-p", "no:cacheprovider", "--collect-only",
                                        "--amp-profile", "smoke", "--amp-data-dir", str(tmp_path))
    result.stdout.fnmatch_lines([f"ampcore: note: --amp-data-dir / $AMPCORE_DATA_DIR {tmp_path} "
                                 "is not used: the smoke profile trains on built-in data*"])


def test_summary_notes_an_unused_data_dir_escaped_and_an_interruption():
    runs = session(profile="smoke", data_dir="/data/<b>x</b>")
    runs.results[("bert", "fp32")] = make_run()
    text = runs.summary()
    assert "Note: --amp-data-dir / $AMPCORE_DATA_DIR /data/&lt;b&gt;x&lt;/b&gt; is not " \
        "used: the smoke profile trains on built-in data" in text and "<b>" not in text
    assert "Interrupted" not in text
    runs.interrupted = True
    assert "Interrupted: these are the runs that finished (partial)" in runs.summary()
    assert "is not used" not in session(profile="seed", data_dir="/data").summary()
