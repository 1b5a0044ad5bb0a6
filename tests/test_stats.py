"""ampcore.measure.stats: the statistics the suite and the history gate rest on."""

import math

import numpy as np
import pytest

from ampcore.measure import stats


@pytest.fixture
def rng():
    return np.random.default_rng(1)


def test_bootstrap_speedup_ci_point_is_ratio_of_medians(rng):
    baseline = rng.normal(1.0, 0.02, 20)
    candidate = rng.normal(0.5, 0.01, 20)
    estimate, low, high = stats.bootstrap_speedup_ci(baseline, candidate)
    assert estimate == pytest.approx(np.median(baseline) / np.median(candidate))
    assert low < estimate < high
    assert 1.8 < low and high < 2.2


def test_bootstrap_speedup_ci_is_reproducible_and_narrows_with_confidence(rng):
    baseline, candidate = rng.normal(1.0, 0.05, 15), rng.normal(0.8, 0.05, 15)
    assert stats.bootstrap_speedup_ci(baseline, candidate, seed=3) == \
        stats.bootstrap_speedup_ci(baseline, candidate, seed=3)
    _, low90, high90 = stats.bootstrap_speedup_ci(baseline, candidate, confidence=0.90)
    _, low99, high99 = stats.bootstrap_speedup_ci(baseline, candidate, confidence=0.99)
    assert low99 <= low90 and high90 <= high99


def test_bootstrap_speedup_ci_degenerate_inputs():
    assert stats.bootstrap_speedup_ci([2.0, 2.0], [1.0, 1.0]) == (2.0, 2.0, 2.0)
    estimate, low, high = stats.bootstrap_speedup_ci([2.0], [1.0, 1.5])
    assert estimate == pytest.approx(2.0 / 1.25) and math.isnan(low) and math.isnan(high)
    with pytest.raises(ValueError):
        stats.bootstrap_speedup_ci([], [1.0])
    with pytest.raises(ValueError):
        stats.bootstrap_speedup_ci([1.0, float("nan")], [1.0])
    with pytest.raises(ValueError):
        stats.bootstrap_speedup_ci([1.0, 0.0], [1.0, 1.0])


def test_mann_whitney_detects_a_shift_and_its_direction(rng):
    fast, slow = rng.normal(1.0, 0.01, 12), rng.normal(1.1, 0.01, 12)
    assert stats.mann_whitney(fast, slow) < 1e-4
    assert stats.mann_whitney(fast, slow, alternative="less") < 1e-4  # fast < slow
    assert stats.mann_whitney(fast, slow, alternative="greater") > 0.99
    assert stats.mann_whitney([1.0, 1.0, 1.0], [1.0, 1.0]) == 1.0


def test_speedup_change_sees_a_drop_and_counts_baseline_noise(rng):
    fp32 = rng.normal(1.0, 0.02, 10)
    amp = rng.normal(0.5, 0.01, 10)
    slower_amp = rng.normal(0.6, 0.01, 10)
    drop = stats.bootstrap_speedup_change(fp32, amp, fp32, slower_amp)
    assert drop.estimate == pytest.approx(np.median(amp) / np.median(slower_amp))
    assert drop.high < 1 and drop.p_drop < 0.01 and drop.p_gain > 0.99
    same = stats.bootstrap_speedup_change(fp32, amp, fp32, amp)
    assert same.estimate == 1.0 and same.low < 1 < same.high and same.p_drop > 0.2


def test_adjust_p_values_is_benjamini_hochberg():
    assert stats.adjust_p_values([]) == []
    adjusted = stats.adjust_p_values([0.01, 0.04, 0.03, 0.5])
    # sorted 0.01, 0.03, 0.04, 0.5 -> p*m/rank = 0.04, 0.06, 0.0533, 0.5, then running minimum
    assert adjusted == pytest.approx([0.04, 0.16 / 3, 0.16 / 3, 0.5])


def test_small_helpers():
    assert stats.median([3, 1, 2]) == 2
    assert stats.quartiles([1, 2, 3, 4, 5]) == (2, 4)
    assert stats.relative_change(2.0, 2.5) == pytest.approx(0.25)
    assert stats.relative_change(0.0, 0.0) == 0.0
    assert stats.robust_sigma([1, 1, 1, 1, 100]) == 0.0


def test_round_cv_is_per_sample_where_the_rounds_sizes_are_known():
    # An epoch's last round is short: 3 rounds of 1.0 s / 64 samples and one of 0.25 s / 16 are
    # the same speed, so no spread; without the sizes the raw times differ.
    rounds, sizes = [1.0, 1.0, 1.0, 0.25], [64, 64, 64, 16]
    assert stats.round_cv(rounds, sizes) == 0.0
    assert stats.round_cv(rounds) > 0.3
    assert stats.round_cv(rounds, sizes[:2]) == stats.round_cv(rounds)  # sizes that don't fit
    assert stats.round_cv([1.0]) is None and stats.coefficient_of_variation([0.0, 0.0]) is None
