"""Drift and quality (engine.profile, engine.drift) on real data: the breast cancer measurements
(569 rows, 30 numeric features) for the small-reference regime, the same rows resampled with
1 % noise for the large one, and the penguins' islands and sexes for categories."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from sklearn.datasets import load_breast_cancer

from engine.drift import compare, compare_column
from engine.profile import ColumnSketch, WindowSketch, reference_profile, with_predictions
from tests.raw_tables import penguin_rows

SHIFTED = [0, 5, 7]  # mean radius, mean compactness, mean concave points


@pytest.fixture(scope="module")
def cancer() -> Any:
    X, _ = load_breast_cancer(return_X_y=True)
    return X


def _spec(width: int) -> list[dict[str, str]]:
    return [{"name": f"f{j}", "kind": "numeric"} for j in range(width)]


def _shift(X: Any, reference: Any, columns: list[int], by: float) -> Any:
    """X with `columns` moved by `by` reference standard deviations."""
    moved = X.copy()
    moved[:, columns] += by * reference[:, columns].std(axis=0)
    return moved


def _report(reference: Any, current: Any, **options: Any) -> Any:
    profile = reference_profile(reference, _spec(reference.shape[1]))
    window = WindowSketch(profile)
    window.add(current)
    return compare(profile, window, **options)


def _split(X: Any, first: int) -> tuple[Any, Any]:
    order = np.random.default_rng(0).permutation(len(X))
    return X[order[:first]], X[order[first:]]


def test_small_reference_flags_exactly_the_shifted_columns_with_ks(cancer: Any) -> None:
    reference, current = _split(cancer, 300)
    report = _report(reference, _shift(current, reference, SHIFTED, 0.5))
    assert report.regime == "tests"
    assert sorted(c.name for c in report.drifted) == ["f0", "f5", "f7"]
    assert {c.test for c in report.features} == {"ks"}
    assert all(c.p_value is not None and c.p_value < 0.05 for c in report.drifted)
    assert not report.dataset_drift and report.drift_share == pytest.approx(3 / 30)
    assert report.features[0].drifted  # drifted features come first


def test_small_reference_unchanged_window_flags_none(cancer: Any) -> None:
    reference, current = _split(cancer, 300)
    report = _report(reference, current)
    assert report.drifted == [] and not report.too_small
    assert "no dataset drift: 0 of 30" in report.verdict()


def test_large_reference_uses_distances_and_flags_exactly_the_shifted_columns(cancer: Any) -> None:
    rng = np.random.default_rng(1)
    big = cancer[rng.integers(0, len(cancer), 40_000)] * (1 + rng.normal(0, 0.01, (40_000, 30)))
    reference, current = big[:20_000], big[20_000:]
    unchanged = _report(reference, current)
    assert unchanged.regime == "distances" and unchanged.drifted == []
    # huge samples: a statistical test would flag noise; the distance stays far below 0.1
    assert max(c.statistic for c in unchanged.features) < 0.05
    shifted = _report(reference, _shift(current, reference, SHIFTED, 0.5))
    assert sorted(c.name for c in shifted.drifted) == ["f0", "f5", "f7"]
    assert {c.test for c in shifted.features} == {"wasserstein"}
    # the normalised Wasserstein distance reads as "standard deviations apart"
    assert all(0.4 < c.statistic < 0.6 for c in shifted.drifted)


def test_dataset_drift_when_the_share_of_drifted_features_reaches_drift_share(cancer: Any) -> None:
    reference, current = _split(cancer, 300)
    shifted = _shift(current, reference, list(range(15)), 1.0)
    assert _report(reference, shifted, drift_share=0.5).dataset_drift
    assert not _report(reference, shifted, drift_share=0.6).dataset_drift


def test_a_tiny_window_is_too_small_to_test_not_drift(cancer: Any) -> None:
    reference, current = _split(cancer, 300)
    report = _report(reference, _shift(current[:8], reference, list(range(30)), 3.0))
    assert report.too_small and not report.dataset_drift and report.drifted == []
    assert all(c.statistic is None for c in report.features)
    assert report.verdict() == "too few rows to test: 8 (at least 100)"


def test_psi_is_available_for_every_column(cancer: Any) -> None:
    """(On a large sample: PSI has no sample-size correction, 300 rows of noise reach 0.1.)"""
    rng = np.random.default_rng(2)
    big = cancer[rng.integers(0, len(cancer), 20_000)] * (1 + rng.normal(0, 0.01, (20_000, 30)))
    reference, current = big[:10_000], big[10_000:]
    report = _report(reference, _shift(current, reference, SHIFTED, 0.5), method="psi")
    assert {c.test for c in report.features} == {"psi"}
    assert sorted(c.name for c in report.drifted) == ["f0", "f5", "f7"]


def _islands(rows: list[dict[str, Any]]) -> Any:
    return np.array([[r["Island"], r["Sex"]] for r in rows], dtype=object)


def test_categories_use_chi_squared_then_jensen_shannon_and_count_unseen_values() -> None:
    rows = penguin_rows(344)
    spec = [{"name": "Island", "kind": "categorical"}, {"name": "Sex", "kind": "categorical"}]
    reference = _islands(rows[:200])
    profile = reference_profile(reference, spec)
    same = WindowSketch(profile)
    same.add(_islands(rows[200:]))
    assert compare(profile, same).drifted == []
    only_biscoe = _islands(rows[200:])
    only_biscoe[:, 0] = "Biscoe"
    only_biscoe[:10, 0] = "Atlantis"  # never seen at training
    moved = WindowSketch(profile)
    moved.add(only_biscoe)
    report = compare(profile, moved)
    assert [c.name for c in report.drifted] == ["Island"] and report.drifted[0].test == "chi2"
    assert report.quality.unseen == {"Island": 10}
    big = WindowSketch(reference_profile(np.repeat(reference, 10, axis=0), spec))
    big.add(np.repeat(only_biscoe, 10, axis=0))
    large = compare(big.profile, big)
    assert [c.name for c in large.drifted] == ["Island"]
    assert large.drifted[0].test == "jensenshannon" and large.drifted[0].statistic >= 0.1


def test_quality_counts_missing_out_of_range_constant_and_refused(cancer: Any) -> None:
    reference, current = _split(cancer, 300)
    current = current.copy()
    current[:50, 1] = np.nan
    current[:3, 2] = reference[:, 2].max() * 10
    current[:, 3] = 42.0
    profile = reference_profile(reference, _spec(30))
    window = WindowSketch(profile)
    window.add(current)
    window.refused = {"f4": 2}
    report = compare(profile, window)
    assert report.quality.missing == {"f1": pytest.approx(50 / len(current))}
    assert report.quality.out_of_range["f2"] == 3
    assert report.quality.constant == ["f3"]
    assert report.quality.refused == {"f4": 2}
    column = next(c for c in report.features if c.name == "f1")
    assert column.missing_share == pytest.approx(50 / len(current))
    assert column.reference_missing_share == 0.0


def test_sketches_add_up_so_a_window_of_minutes_equals_the_whole(cancer: Any) -> None:
    reference, current = _split(cancer, 300)
    profile = reference_profile(reference, _spec(30))
    whole = WindowSketch(profile)
    whole.add(current)
    merged = WindowSketch(profile)
    for part in np.array_split(current, 7):
        minute = WindowSketch(profile)
        minute.add(part)
        merged.merge(WindowSketch.from_dict(profile, minute.to_dict()))  # through JSON's shape
    for mine, theirs in zip(merged.to_dict()["features"], whole.to_dict()["features"], strict=True):
        assert mine["counts"] == theirs["counts"] and mine["missing"] == theirs["missing"]
        assert mine["sums"] == pytest.approx(theirs["sums"])
    assert compare(profile, merged).to_dict() == compare(profile, whole).to_dict()


def test_the_profile_keeps_predictions_target_and_a_bounded_seeded_sample(cancer: Any) -> None:
    y = (cancer[:, 0] > 14).astype(int)
    profile = reference_profile(cancer, _spec(30), target=y, target_kind="categorical", seed=3)
    assert len(profile["sample"]["rows"]) == 569 and profile["rows"] == 569
    again = reference_profile(cancer, _spec(30), target=y, target_kind="categorical", seed=3)
    assert again["sample"] == profile["sample"]
    assert profile["target"]["categories"] == ["0", "1"]
    with_model = with_predictions(profile, 1 - y, "categorical")
    assert with_model["prediction"]["counts"]["counts"][:2] == sorted(np.bincount(1 - y))[::-1]
    flipped = compare_column(profile["target"], 1 - y)
    assert flipped.drifted and flipped.test == "chi2"


def test_an_unknown_method_is_a_usage_error(cancer: Any) -> None:
    from engine.errors import UsageError

    profile = reference_profile(cancer[:100], _spec(30))
    with pytest.raises(UsageError, match="unknown drift method 'tt'"):
        compare(profile, WindowSketch(profile), method="tt")


def test_column_sketch_round_trips_min_max_and_out_of_range() -> None:
    reference = reference_profile(np.arange(100.0).reshape(-1, 1), _spec(1))["features"][0]
    sketch = ColumnSketch(reference)
    sketch.add(np.array([-5.0, 50.0, np.nan, 500.0]))
    again = ColumnSketch.from_dict(reference, sketch.to_dict())
    assert (again.minimum, again.maximum, again.outside, again.missing) == (-5.0, 500.0, 2, 1)
