"""Accuracy verdicts with statistical power: the held-out set, its packed per-sample
correctness, the paired statistics, the parity verdict, --seeds and compare's accuracy row."""

import math
from types import SimpleNamespace

import numpy as np
import pytest

import ampcore.train.run
from ampcore.judge import gates
from ampcore.options import table as options
from ampcore.measure import stats
from ampcore.cli import main
from ampcore.core.errors import DataError, DataSizeError
from ampcore.history import verdicts
from ampcore.judge.accuracy import (DEFAULT_MARGIN, judge_against_each, judge_paired,
                                    practical_margin)
from ampcore.judge.metrics import get_metric
from ampcore.suite.summary import seed_notes
from ampcore.judge.record import SCHEMA, SCHEMA_KEY, BenchmarkRecord
from ampcore.train.result import RunResult

SMOKE = ["--profile", "smoke", "--device", "cpu", "--no-progress"]


def correctness(n: int, accuracy: float, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).random(n) < accuracy


def worsen(correct: np.ndarray, flips: int, seed: int = 1) -> np.ndarray:
    """``correct`` with ``flips`` of its right answers turned wrong (an AMP made worse)."""
    worse = correct.copy()
    right = np.flatnonzero(worse)
    worse[np.random.default_rng(seed).choice(right, flips, replace=False)] = False
    return worse


def run(precision="fp32", correct=None, test_accuracy=0.9, meaningful=True,
        source="held-out reviews") -> RunResult:
    held = {} if correct is None else dict(
        heldout_samples=len(correct), heldout_accuracy=float(np.mean(correct)),
        heldout_correct=stats.pack_correct(correct), heldout_source=source)
    return RunResult(
        workload="bert", precision=precision, profile="seed", device="cuda", config={},
        data_source="d", weights_source="w", accuracy_meaningful=meaningful,
        round_times_s=[1.0], samples_per_round=[64], total_steps=10, warmup_time_s=0.0,
        eval_time_s=0.0, accuracy_per_epoch=[test_accuracy], test_loss_per_epoch=[0.3],
        train_losses=[0.5], predictions=[0, 1] * 100, peak_memory_bytes=None,
        grad_scaler={"skipped_steps": 0}, nonfinite_losses=0, environment={}, **held)


# --- packed correctness -------------------------------------------------------------------------

@pytest.mark.parametrize("n", [1, 7, 8, 9, 5000])
def test_packed_correctness_round_trips(n):
    correct = correctness(n, 0.8)
    text = stats.pack_correct(correct)
    assert np.array_equal(stats.unpack_correct(text, n), correct)
    assert len(text) <= 4 * math.ceil(math.ceil(n / 8) / 3)  # base64 of n bits, no more


@pytest.mark.parametrize("text, n, message", [
    ("not base64!", 8, "not base64"),
    (stats.pack_correct([True] * 16), 8, "holds 16 bits, not the 8 samples"),
    (stats.pack_correct([True] * 8), 5, "bits set past its sample count"),
    (stats.pack_correct([True]), 0, "sample count >= 1"),
    (12, 8, "need packed text"),
])
def test_unpack_refuses_what_cannot_be_the_samples(text, n, message):
    with pytest.raises(ValueError, match=message):
        stats.unpack_correct(text, n)


# --- paired statistics --------------------------------------------------------------------------

def test_mcnemar_exact_values():
    assert stats.mcnemar_exact(0, 0) == 1.0
    assert stats.mcnemar_exact(10, 0) == pytest.approx(2 * 0.5 ** 10)
    assert stats.mcnemar_exact(10, 0, "greater") == pytest.approx(0.5 ** 10)
    assert stats.mcnemar_exact(5, 5) == 1.0
    with pytest.raises(ValueError, match=">= 0"):
        stats.mcnemar_exact(-1, 3)


def test_newcombe_interval_is_mirrored_and_close_to_wald_when_large():
    low, high = stats.newcombe_paired_ci(4000, 60, 40, 900)
    assert (-high, -low) == pytest.approx(stats.newcombe_paired_ci(4000, 40, 60, 900))
    n, theta = 5000, 20 / 5000
    half = 1.96 * math.sqrt((100 / n - theta ** 2) / n)
    assert low == pytest.approx(theta - half, abs=0.05 * half)
    assert high == pytest.approx(theta + half, abs=0.05 * half)


def test_newcombe_interval_keeps_a_width_without_disagreements():
    """Wald's interval collapses to [0, 0] when b = c = 0; one model agreeing with another on
    every one of few samples is not proof that they never differ."""
    low, high = stats.newcombe_paired_ci(180, 0, 0, 20)
    assert low < 0 < high
    assert high - low > stats.newcombe_paired_ci(1800, 0, 0, 200)[1] * 2 - 1e-12


def test_newcombe_interval_covers_the_true_difference():
    rng = np.random.default_rng(3)
    hits = 0
    for _ in range(400):
        a, b, c, d = rng.multinomial(300, [0.83, 0.03, 0.02, 0.12])
        low, high = stats.newcombe_paired_ci(a, b, c, d)
        hits += low <= 0.01 <= high
    assert hits / 400 >= 0.92


@pytest.mark.parametrize("pairs, message", [
    ([], "at least one pair"),
    ([([True, False], [True])], "equally long"),
    ([([], [])], "non-empty"),
])
def test_paired_accuracy_refuses_unpaired_input(pairs, message):
    with pytest.raises(ValueError, match=message):
        stats.paired_accuracy(pairs)


def test_paired_accuracy_counts_the_disagreements():
    ref = [True, True, True, False, False]
    cand = [True, False, False, True, False]
    p = stats.paired_accuracy([(ref, cand)])
    assert (p.n, p.b, p.c) == (5, 2, 1)
    assert (p.reference_accuracy, p.candidate_accuracy) == (0.6, 0.4)
    assert p.difference == pytest.approx(0.2) and p.low < 0.2 < p.high


def test_seeds_widen_the_interval_by_their_spread():
    """Several seeds: no narrower than the pooled table, and wider when the seeds disagree."""
    base = correctness(2000, 0.9)
    steady = [(base, worsen(base, 10, seed)) for seed in range(3)]
    pooled = stats.paired_accuracy(steady)
    assert pooled.runs == 3 and "t-interval" in pooled.method
    erratic = [(base, worsen(base, flips, seed)) for seed, flips in enumerate((0, 10, 80))]
    wide = stats.paired_accuracy(erratic)
    assert wide.high - wide.low > pooled.high - pooled.low
    assert len(wide.run_differences) == 3


# --- the accuracy judge ---------------------------------------------------------------------------

def table(n: int, reference_accuracy: float, b: int, c: int, seed: int = 0):
    """Reference and candidate correctness with exactly ``b`` disagreements of reference right,
    candidate wrong and ``c`` of the reverse, in shuffled order."""
    right = round(reference_accuracy * n)
    reference = np.arange(n) < right
    candidate = reference.copy()
    candidate[:b] = False
    candidate[right:right + c] = True
    order = np.random.default_rng(seed).permutation(n)
    return reference[order], candidate[order]


def judged_everywhere(reference, candidate) -> list[bool]:
    """Whether the judge, the suite's parity test and compare's row each call it a loss."""
    metric = get_metric("accuracy")
    verdict = verdicts.field_verdict(metric, [bench(reference)], bench(candidate),
                                     metric.default_threshold)
    parity = gates.parity_verdict(run(correct=reference), run("amp-fp16", candidate),
                                  DEFAULT_MARGIN, 0.75)
    return [judge_paired([(reference, candidate)]).worse, not parity.passed,
            verdict.status == verdicts.REGRESSION]


def test_judge_flags_the_drop_the_old_limit_let_through():
    """amp-fp16 fell from 0.8312 to 0.8102 on 5,000 held-out reviews (b=150, c=45, exact
    McNemar p = 2e-14), within the old 0.03 limit."""
    reference, candidate = table(5000, 0.8312, 150, 45)
    paired = judge_paired([(reference, candidate)]).paired
    assert (paired.b, paired.c, paired.candidate_accuracy) == (150, 45, pytest.approx(0.8102))
    assert paired.p_mcnemar == pytest.approx(2.1e-14, rel=0.05)
    assert judged_everywhere(reference, candidate) == [True, True, True]


@pytest.mark.parametrize("b, c", [(0, 0), (1, 0), (0, 1)])
def test_judge_passes_a_deterministic_aa(b, c):
    """Two sessions of one seed: the same predictions, or 1 of 5,000 different."""
    assert judged_everywhere(*table(5000, 0.8312, b, c)) == [False, False, False]


def test_judge_a_significant_drop_below_the_margin_is_no_regression():
    reference, candidate = table(5000, 0.8312, 20, 5)
    judged = judge_paired([(reference, candidate)])
    assert judged.paired.difference == pytest.approx(0.003) and judged.paired.p_worse < 0.01
    assert judged_everywhere(reference, candidate) == [False, False, False]
    assert judge_paired([(reference, candidate)], threshold=0.002).worse


def test_judge_a_large_change_on_a_small_set_without_significance_is_not_flagged():
    reference, candidate = table(50, 0.8, 3, 0)
    judged = judge_paired([(reference, candidate)])
    assert judged.paired.difference == pytest.approx(0.06) and judged.paired.p_worse > 0.1
    assert judged_everywhere(reference, candidate) == [False, False, False]
    assert not judge_paired([(candidate, reference)]).better


def test_seed_spread_sets_the_margin():
    assert practical_margin(0.005, [0.84]) == (0.005, None)
    margin, spread = practical_margin(0.005, [0.835, 0.84, 0.845])
    assert (spread, margin) == (pytest.approx(0.005), pytest.approx(3 * 0.005))
    assert practical_margin(0.005, [0.84, 0.8401])[0] == 0.005  # steady seeds: the threshold
    # 0.008 lower in each of three seed pairs: a loss beside steady seeds, not beside seeds
    # whose own accuracies spread by sd 0.005 (margin 0.015).
    steady = [table(5000, 0.83, 50, 10, seed) for seed in range(3)]
    spread_out = [table(5000, acc, 50, 10, seed) for seed, acc in enumerate((0.825, 0.83, 0.835))]
    assert judge_paired(steady).worse
    judged = judge_paired(spread_out)
    assert not judged.worse and judged.margin == pytest.approx(0.015)
    assert "3 x the reference seeds' sd 0.0050" in judged.describe()


def test_repeated_baseline_sessions_are_not_new_evidence():
    """Three sessions of one seed as the baseline judge like one: pooled, their tables would
    triple b and c and make a borderline drop (one-sided p = 0.025) look certain."""
    reference, candidate = table(1000, 0.85, 13, 4)
    assert judge_paired([(reference, candidate)] * 3).worse  # what pooling would say
    three = judge_against_each([reference] * 3, candidate)
    assert not three.worse and three.paired.p_worse == pytest.approx(0.0245, abs=1e-3)
    assert "against each of 3 baseline runs" in three.note
    clear = table(1000, 0.85, 20, 4)
    assert judge_against_each([clear[0]] * 3, clear[1]).worse
    assert not judge_against_each([clear[0], clear[0], clear[1]], clear[1]).worse


def test_the_suite_margin_is_the_judge_default():
    assert options.resolve(options.SUITE, {}, environ={}).acc_tol == DEFAULT_MARGIN == 0.005


# --- the parity verdict ---------------------------------------------------------------------------

def test_parity_passes_an_equal_amp_and_fails_a_worse_one():
    """Negative control: the same predictions pass; 3 points fewer right answers fail."""
    fp32 = run(correct=correctness(5000, 0.88))
    equal = gates.parity_verdict(fp32, run("amp-bf16", fp32.heldout()), DEFAULT_MARGIN, 0.75)
    assert equal.passed, equal.message
    worse = gates.parity_verdict(fp32, run("amp-bf16", worsen(fp32.heldout(), 150)),
                                 DEFAULT_MARGIN, 0.75)
    assert not worse.passed
    ref_acc = fp32.heldout_accuracy
    for shown in (f"held-out accuracy {ref_acc - 0.03:.4f} vs fp32 {ref_acc:.4f}",
                  "5000 paired samples", "b=150", "c=0", "McNemar p=", "96% CI [",
                  "one-sided p < 0.02", "margin 0.0050"):
        assert shown in worse.message, (shown, worse.message)


def test_parity_passes_a_small_set_without_evidence_of_a_drop():
    """2 points fewer right answers on 200 samples (b=4, c=0) could be chance (one-sided
    p = 0.0625): the paired test does not call it a loss, however large the gap."""
    fp32 = run(correct=correctness(200, 0.88))
    amp = run("amp-bf16", worsen(fp32.heldout(), 4))
    verdict = gates.parity_verdict(fp32, amp, DEFAULT_MARGIN, 0.75)
    assert verdict.passed and "fp32 - AMP = +0.0200" in verdict.message


def test_parity_without_heldout_falls_back_to_the_gap_and_says_so():
    """Without a paired test the limit stays today's 0.03, however small the margin."""
    fp32, amp = run(test_accuracy=0.88), run("amp-fp16", test_accuracy=0.86)
    verdict = gates.parity_verdict(fp32, amp, DEFAULT_MARGIN, 0.75)
    assert verdict.passed and "THRESHOLD ONLY" in verdict.message and "gap +0.0200" in verdict.message
    assert "limit 0.0300" in verdict.message
    assert not gates.parity_verdict(fp32, run("amp-fp16", test_accuracy=0.84), 0.03, 0.75).passed


def test_parity_random_init_still_skips_with_its_reason():
    verdict = gates.parity_verdict(run(meaningful=False, correct=correctness(50, 0.5)),
                                   run("amp-bf16", correctness(50, 0.5)), 0.03, 0.75)
    assert verdict.skip_reason and "random initial weights" in verdict.skip_reason


def test_parity_floor_names_the_seed_that_did_not_learn():
    fp32 = [run(correct=correctness(100, 0.9)), run(correct=correctness(100, 0.5), test_accuracy=0.5)]
    amp = [run("amp-bf16", correctness(100, 0.9)), run("amp-bf16", correctness(100, 0.5))]
    verdict = gates.parity_verdict(fp32, amp, 0.03, 0.75)
    assert not verdict.passed and "(seed 2 of 2)" in verdict.message and "floor" in verdict.message


def test_parity_over_seeds_reports_each_accuracy_and_the_spread():
    fp32 = [run(correct=correctness(3000, 0.9, seed)) for seed in range(3)]
    amp = [run("amp-bf16", r.heldout()) for r in fp32]
    verdict = gates.parity_verdict(fp32, amp, 0.03, 0.75)
    assert verdict.passed, verdict.message
    assert "per seed, fp32:" in verdict.message and "spread" in verdict.message
    assert "9000 paired samples" in verdict.message


def test_parity_refuses_unpaired_runs():
    with pytest.raises(ValueError, match="seed by seed"):
        gates.parity_verdict([run(), run()], [run("amp-bf16")], 0.03, 0.75)
    verdict = gates.parity_verdict(run(correct=correctness(100, 0.9)),
                                   run("amp-bf16", correctness(90, 0.9)), 0.03, 0.75)
    assert not verdict.passed and "cannot be paired" in verdict.message


# --- held-out data --------------------------------------------------------------------------------

def test_smoke_corpus_heldout_is_disjoint_and_leaves_the_sample_unchanged():
    from ampcore.data import smoke

    plain = smoke.sentiment_corpus(40, 20, seed=3)
    held = smoke.sentiment_corpus(40, 20, seed=3, heldout_samples=30)
    assert (held.train_texts, held.test_texts) == (plain.train_texts, plain.test_texts)
    assert len(held.heldout_texts) == len(held.heldout_labels) == 30
    assert not set(held.heldout_texts) & set(held.train_texts + held.test_texts)
    assert sum(held.heldout_labels) == 15 and "disjoint" in held.heldout_source


def test_smoke_digits_heldout_and_its_size_limit():
    from ampcore.data import smoke

    plain = smoke.digits(100, 50, seed=1)
    held = smoke.digits(100, 50, seed=1, heldout_samples=40)
    assert np.array_equal(plain.train_labels, held.train_labels)
    assert held.heldout_images.shape[0] == 40 and plain.heldout_images is None
    with pytest.raises(DataSizeError, match=r"1797 images; asked for 1850 \(1000 train \+ 50 "
                                            r"test \+ 800 held-out\)"):
        smoke.digits(1000, 50, seed=1, heldout_samples=800)


@pytest.fixture
def imdb_dsets(tmp_path, write_imdb, hf_datasets_cache, isolated_env):
    from ampcore.data import imdb

    def load(n_train=60, n_test=20):
        write_imdb(tmp_path, n_train, "train")
        if n_test:
            write_imdb(tmp_path, n_test, "test")
        dsets, source = imdb.load_imdb(tmp_path, allow_download=False)
        return dsets, source, imdb.seed_sample(dsets, 30, 10, seed=42, source=source)
    return load


def test_imdb_heldout_skips_reviews_of_the_sample(imdb_dsets):
    """The fixture's test reviews repeat its first train reviews (as IMDB repeats ~120): those
    in the sample are passed over."""
    from ampcore.data import imdb

    dsets, source, texts = imdb_dsets(60, 40)
    held = imdb.add_heldout(dsets, texts, None, 42, source)
    sample = set(texts.train_texts + texts.test_texts)
    assert held.heldout_texts and not set(held.heldout_texts) & sample
    assert len(held.heldout_texts) == 40 - len(sample & set(dsets["test"]["text"]))
    assert "test.parquet" in held.heldout_source and "disjoint" in held.heldout_source
    assert imdb.add_heldout(dsets, texts, 0, 42, source).heldout_texts == []


def test_imdb_heldout_larger_than_the_data_names_the_sizes(imdb_dsets):
    from ampcore.data import imdb

    dsets, source, texts = imdb_dsets(60, 20)
    with pytest.raises(DataError, match=r"--eval-samples 5000: .*test.parquet holds 20 reviews, "
                                        r"\d+ of them also in the 40-review training sample"):
        imdb.add_heldout(dsets, texts, 5000, 42, source)


def test_imdb_heldout_without_a_test_split_uses_the_rest_of_train(imdb_dsets):
    from ampcore.data import imdb

    dsets, source, texts = imdb_dsets(60, 0)
    held = imdb.add_heldout(dsets, texts, 20, 42, source)
    assert len(held.heldout_texts) == 20 and "outside the sample" in held.heldout_source
    with pytest.raises(DataError, match="at most 20 held-out reviews"):
        imdb.add_heldout(dsets, texts, 21, 42, source)


def test_overlapping_heldout_is_refused_with_the_sizes():
    from ampcore.data import imdb

    with pytest.raises(DataError, match="1 of the 2 held-out reviews .* 3-review training sample"):
        imdb.check_disjoint(["a", "b", "c"], ["c", "d"], "test.parquet")


def test_mnist_heldout_larger_than_its_test_split_names_the_sizes():
    import torch

    from ampcore.data.mnist import ImageSplits
    from ampcore.workloads import resnet18

    splits = ImageSplits(torch.zeros(10, 1, 4, 4), torch.zeros(10), torch.zeros(5, 1, 4, 4),
                         torch.zeros(5), 10, "mnist files")
    assert resnet18._heldout(splits, None)[2] == "5 test images of mnist files"
    with pytest.raises(DataSizeError, match="asks for 6 held-out images but the test split of mnist files holds 5"):
        resnet18._heldout(splits, 6)


# --- the evaluation in a run ----------------------------------------------------------------------

def test_trainer_evaluates_the_heldout_set_under_the_run_precision(make_tiny_workload, train_all):
    import torch

    from ampcore.train.loop import Trainer
    from ampcore.train.plan import plan_steps
    from ampcore.core.registry import get_precision
    from ampcore.train.precision import activate

    workload = make_tiny_workload(n_train=40, n_test=10)
    x = torch.randn(30, 8, generator=torch.Generator().manual_seed(5))
    workload.heldout_inputs, workload.heldout_labels = {"x": x}, (x.sum(1) > 0).long()
    with activate(get_precision("amp-bf16"), torch.device("cpu")) as amp:
        trainer = Trainer(workload, amp, plan_steps(40, 8, 2, 0, 2, torch.device("cpu")),
                          eval_batch_size=7)  # batches of 7 for 30 samples: a ragged last one
        evaluation = train_all(trainer).evaluate_heldout()
    assert len(evaluation.correct) == len(evaluation.predictions) == 30
    assert evaluation.accuracy == pytest.approx(sum(evaluation.correct) / 30)
    fields = evaluation.heldout_fields(0.1, "30 points")
    assert stats.unpack_correct(fields["heldout_correct"], 30).tolist() == evaluation.correct
    workload.heldout_labels = None
    assert trainer.evaluate_heldout() is None


def test_smoke_run_keeps_its_heldout_predictions(isolated_env, one_cpu_thread):
    from ampcore.train.run import run_experiment
    from ampcore.train.spec import RunSpec

    result = run_experiment(RunSpec("resnet18", "fp32", "smoke", device="cpu", eval_samples=64))
    assert result.heldout_samples == 64 and len(result.heldout()) == 64
    assert result.heldout_accuracy == pytest.approx(result.heldout().mean())
    assert result.config["eval_samples"] == 64 and "disjoint" in result.heldout_source
    again = RunResult.from_dict(result.to_dict())
    assert np.array_equal(again.heldout(), result.heldout())
    record = BenchmarkRecord.from_extra_info(BenchmarkRecord.from_result(result).to_extra_info())
    assert (record.heldout_samples, record.heldout_correct) == (64, result.heldout_correct)
    assert record.schema == SCHEMA


# --- records --------------------------------------------------------------------------------------

def test_schema_2_records_without_heldout_still_load():
    record = BenchmarkRecord.from_extra_info({SCHEMA_KEY: 2, "workload": "bert",
                                              "precision": "fp32", "final_accuracy": 0.9})
    assert record.schema == 2 and record.heldout_correct is None and record.final_accuracy == 0.9


def test_malformed_heldout_fields_read_as_not_available():
    record = BenchmarkRecord.from_extra_info({SCHEMA_KEY: SCHEMA, "workload": "bert",
                                              "precision": "fp32", "heldout_correct": 17,
                                              "heldout_samples": "many"})
    assert record.heldout_correct is None and record.heldout_samples is None


# --- options, CLI and suite seeds ----------------------------------------------------------------

@pytest.mark.parametrize("key, value, message", [
    ("eval_samples", "-1", "expected a whole number >= 0"),
    ("eval_samples", "lots", "expected a whole number >= 0"),
    ("seeds", "0", "expected a whole number >= 1"),
])
def test_bad_eval_samples_and_seeds_are_option_errors(key, value, message):
    for command in options.COMMANDS:
        with pytest.raises(options.OptionError, match=message):
            options.resolve(command, {key: value}, environ={})


def test_eval_samples_and_seeds_from_the_environment():
    for command in options.COMMANDS:
        settings = options.resolve(command, {}, environ={"AMPCORE_EVAL_SAMPLES": "0",
                                                         "AMPCORE_SEEDS": "3"})
        assert (settings.eval_samples, settings.seeds) == (0, 3)
    assert options.resolve(options.RUN, {}, environ={}).seeds == 1


@pytest.fixture
def stub_runs(monkeypatch, make_result):
    specs = []

    def fake(spec, progress=False):
        specs.append(spec)
        acc = 0.9 + 0.01 * (spec.train_seed or 0) % 3
        return make_result(workload=spec.workload, precision=spec.precision,
                           profile=spec.profile, device=spec.device, accuracy_per_epoch=[acc])

    monkeypatch.setattr(ampcore.train.run, "run_experiment", fake)
    return specs


def test_cli_seeds_train_every_seed_and_print_the_spread(stub_runs, capsys):
    assert main(["run", "--workload", "resnet18", "--precision", "fp32", "amp-bf16", *SMOKE,
                 "--seeds", "3", "--eval-samples", "100"]) == 0
    asked = [(s.precision, s.train_seed, s.eval_samples) for s in stub_runs]
    assert asked == [("fp32", None, 100), ("amp-bf16", None, 100), ("fp32", 43, 100),
                     ("amp-bf16", 43, 100), ("fp32", 44, 100), ("amp-bf16", 44, 100)]
    out = capsys.readouterr().out
    assert "accuracy per training seed" in out and "resnet18-fp32:" in out and "spread" in out


def test_cli_bad_eval_samples_exits_2_before_training(stub_runs, capsys):
    assert main(["run", "--workload", "bert", *SMOKE, "--eval-samples", "-5"]) == 2
    assert "--eval-samples: expected a whole number >= 0" in capsys.readouterr().err
    assert stub_runs == []


def test_suite_seeds_train_extra_seeds_once(stub_runs, make_result):
    from ampcore.suite.session import SuiteSession

    settings = options.resolve(options.SUITE, {"profile": "smoke", "device": "cpu", "seeds": "3",
                                               "cuda_graphs": "off"}, environ={})
    session = SuiteSession(settings, config=None)
    session.results[("bert", "fp32")] = make_result(precision="fp32")
    runs = session.seeds("bert", "fp32")
    assert len(runs) == 3 and runs[0] is session.results[("bert", "fp32")]
    assert [s.train_seed for s in stub_runs] == [43, 44]
    assert session.seeds("bert", "fp32") == runs and len(stub_runs) == 2  # cached
    notes = seed_notes(session.results, session.seed_results)
    assert any("over 3 seeds" in note for note in notes)


def test_train_seed_changes_training_not_data():
    from ampcore.train.spec import RunSpec

    config = RunSpec("bert", "fp32", "smoke", train_seed=7, eval_samples=9).workload_config()
    assert (config.seed, config.training_seed, config.eval_samples) == (42, 7, 9)
    assert RunSpec("bert", "fp32", "smoke").workload_config().training_seed == 42


# --- compare's accuracy row ------------------------------------------------------------------------

def bench(correct=None, accuracy=0.9, source="held-out reviews"):
    held = {} if correct is None else dict(
        heldout_samples=len(correct), heldout_accuracy=float(np.mean(correct)),
        heldout_correct=stats.pack_correct(correct), heldout_source=source)
    return SimpleNamespace(record=BenchmarkRecord("bert", "amp-bf16", final_accuracy=accuracy,
                                                  **held))


def test_compare_accuracy_is_paired_on_the_heldout_set():
    metric = get_metric("accuracy")
    base = correctness(5000, 0.88)
    same = verdicts.field_verdict(metric, [bench(base)], bench(base), metric.default_threshold)
    assert same.status == verdicts.OK and same.method == metric.test
    worse = verdicts.field_verdict(metric, [bench(base)], bench(worsen(base, 200)),
                                   metric.default_threshold)
    assert worse.status == verdicts.REGRESSION
    assert "b=200" in worse.note and "McNemar" in worse.note and worse.p_value < 1e-6
    assert worse.change == pytest.approx(-0.04) and worse.ci[1] < 0
    # Two points worse on 5,000 samples: significant, but inside a margin set to 0.03.
    assert verdicts.field_verdict(metric, [bench(base)], bench(worsen(base, 100)),
                                  0.03).status == verdicts.OK
    better = verdicts.field_verdict(metric, [bench(worsen(base, 100))], bench(base),
                                    metric.default_threshold)
    assert better.status == verdicts.IMPROVEMENT


def test_compare_accuracy_falls_back_to_the_threshold_for_old_files():
    metric = get_metric("accuracy")
    old = verdicts.field_verdict(metric, [bench(accuracy=0.9)], bench(correctness(500, 0.9),
                                                                      accuracy=0.85), 0.03)
    assert old.status == verdicts.REGRESSION and old.method == verdicts.PAIRED_FALLBACK
    assert "no baseline run saved held-out predictions" in old.note
    other_set = verdicts.field_verdict(metric, [bench(correctness(500, 0.9), source="other")],
                                       bench(correctness(500, 0.9)), 0.03)
    assert other_set.method == verdicts.PAIRED_FALLBACK
    missing = verdicts.field_verdict(metric, [bench(correctness(500, 0.9))], bench(), 0.03)
    assert "the candidate saved no held-out predictions" in missing.note
    # No paired test, so no limit below today's 0.03: the default margin does not apply.
    small = verdicts.field_verdict(metric, [bench(accuracy=0.9)], bench(accuracy=0.88),
                                   metric.default_threshold)
    assert small.status == verdicts.OK and small.threshold == 0.03
    assert "larger of the margin and 0.03" in small.note


def test_compare_output_shows_the_paired_statistics(tmp_path, monkeypatch, capsys):
    from datetime import datetime, timezone

    from tests.support import synthetic

    base = correctness(2000, 0.9)
    store = tmp_path / ".benchmarks" / "Linux"
    for index, correct in ((1, base), (2, worsen(base, 120))):
        held = dict(heldout_samples=2000, heldout_correct=stats.pack_correct(correct),
                    heldout_accuracy=float(correct.mean()), heldout_source="held-out reviews")
        doc = synthetic.amp_session(np.random.default_rng(index),
                                    datetime(2025, 3, 1, index, tzinfo=timezone.utc),
                                    commit=f"{index:02x}" * 20, records={"bert-amp-bf16": held})
        synthetic.write_run(store, index, doc)
    monkeypatch.chdir(tmp_path)
    assert main(["compare", str(tmp_path / ".benchmarks"), "--verbose"]) == 1
    out = capsys.readouterr().out
    assert "accuracy change 96% CI" in out and "b=120" in out and "McNemar" in out
