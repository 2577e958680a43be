"""Data drift and data quality: a window sketch compared with the run's reference profile.

The tests follow Evidently's sample-size-aware defaults. Up to 1,000 reference rows, statistical
tests: two-sample Kolmogorov-Smirnov for numbers and chi-squared for categories, drift when
p < 0.05. Above that, where every test finds a "significant" difference in huge samples,
distances with a fixed threshold: Wasserstein distance normalised by the reference's standard
deviation for numbers, Jensen-Shannon distance for categories, drift when >= 0.1. PSI (0.1)
is available for either. Both sides are bucketed the same way (engine.profile), so the figures
are the same whether the window is a file, the prediction log or the server's live counters.
A window smaller than `min_rows` is reported as too small, never tested.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from engine.errors import UsageError
from engine.profile import ColumnSketch, WindowSketch, reference_sketch

SMALL_REFERENCE = 1000  # up to this many reference rows: statistical tests, else distances
P_VALUE = 0.05
DISTANCE = 0.1
METHODS = ("auto", "ks", "chi2", "wasserstein", "jensenshannon", "psi")


@dataclass
class ColumnDrift:
    name: str
    kind: str
    test: str
    statistic: float | None
    threshold: float
    p_value: float | None
    drifted: bool
    rows: int
    missing_share: float
    reference_missing_share: float
    outside: int  # out of the training range (numbers) or unseen (categories)


@dataclass
class Quality:
    missing: dict[str, float] = field(default_factory=dict)  # feature -> share, when above 0
    unseen: dict[str, int] = field(default_factory=dict)
    out_of_range: dict[str, int] = field(default_factory=dict)
    constant: list[str] = field(default_factory=list)
    duplicates: int = 0
    refused: dict[str, int] = field(default_factory=dict)

    @property
    def issues(self) -> int:
        return (
            len(self.unseen)
            + len(self.out_of_range)
            + len(self.constant)
            + (1 if self.duplicates else 0)
            + len(self.refused)
        )


@dataclass
class DriftReport:
    rows: int
    reference_rows: int
    min_rows: int
    too_small: bool
    regime: str  # "tests" (small reference) or "distances"
    features: list[ColumnDrift]
    drift_share: float  # share of features that drifted
    drift_share_threshold: float
    dataset_drift: bool
    prediction: ColumnDrift | None
    target: ColumnDrift | None
    quality: Quality
    missing_share: float  # of all feature values in the window

    @property
    def drifted(self) -> list[ColumnDrift]:
        return [c for c in self.features if c.drifted]

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["drifted_features"] = [c.name for c in self.drifted]
        return out

    def verdict(self) -> str:
        """One line, as the CLI prints it and the app's banner shows it."""
        if self.too_small:
            return f"too few rows to test: {self.rows} (at least {self.min_rows})"
        if self.dataset_drift:
            return (
                f"dataset drift: {len(self.drifted)} of {len(self.features)} features drifted "
                f"({self.drift_share:.0%} >= {self.drift_share_threshold:.0%})"
            )
        return (
            f"no dataset drift: {len(self.drifted)} of {len(self.features)} features drifted "
            f"({self.drift_share:.0%} < {self.drift_share_threshold:.0%})"
        )


def compare(
    profile: dict[str, Any],
    window: WindowSketch,
    *,
    drift_share: float = 0.5,
    min_rows: int = 100,
    method: str = "auto",
) -> DriftReport:
    """The drift and quality report of `window` against `profile`."""
    if method not in METHODS:
        raise UsageError(f"unknown drift method {method!r}: choose from {', '.join(METHODS)}")
    reference_rows = int(profile["rows"])
    regime = "tests" if reference_rows <= SMALL_REFERENCE else "distances"
    too_small = window.rows < min_rows
    features = [
        _column(
            reference_sketch(profile, "features", j), window.features[j], ref, method, too_small
        )
        for j, ref in enumerate(profile["features"])
    ]
    prediction = target = None
    if window.prediction is not None and window.prediction.rows and profile.get("prediction"):
        prediction = _column(
            reference_sketch(profile, "prediction"),
            window.prediction,
            profile["prediction"],
            method,
            window.prediction.rows < min_rows,
        )
    if window.target is not None and window.target.rows and profile.get("target"):
        target = _column(
            reference_sketch(profile, "target"),
            window.target,
            profile["target"],
            method,
            window.target.rows < min_rows,
        )
    share = sum(c.drifted for c in features) / len(features) if features else 0.0
    values = sum(s.rows for s in window.features)
    return DriftReport(
        rows=window.rows,
        reference_rows=reference_rows,
        min_rows=min_rows,
        too_small=too_small,
        regime=regime,
        features=sorted(features, key=lambda c: (not c.drifted, -(c.statistic or 0.0))),
        drift_share=share,
        drift_share_threshold=drift_share,
        dataset_drift=not too_small and bool(features) and share >= drift_share,
        prediction=prediction,
        target=target,
        quality=_quality(profile, window),
        missing_share=sum(s.missing for s in window.features) / values if values else 0.0,
    )


def compare_column(
    reference: dict[str, Any], values: Any, *, min_rows: int = 100, method: str = "auto"
) -> ColumnDrift:
    """One column's drift (the target's, from outcomes that came back later) against its
    reference."""
    current = ColumnSketch(reference)
    current.add(values)
    return _column(
        ColumnSketch.from_dict(reference, reference["counts"]),
        current,
        reference,
        method,
        current.rows < min_rows,
    )


def _column(
    reference: ColumnSketch,
    current: ColumnSketch,
    ref: dict[str, Any],
    method: str,
    too_small: bool,
) -> ColumnDrift:
    """One column's test, chosen by the size of its own reference (the predictions' reference
    is the holdout, smaller than the training rows)."""
    regime = "tests" if reference.rows <= SMALL_REFERENCE else "distances"
    test = _test_for(ref["kind"], method, regime)
    statistic = p_value = None
    threshold = P_VALUE if test in ("ks", "chi2") else DISTANCE
    drifted = False
    if not too_small and current.counts.sum() and reference.counts.sum():
        statistic, p_value = TESTS[test](reference, current)
        drifted = p_value < threshold if p_value is not None else statistic >= threshold
    return ColumnDrift(
        name=ref["name"],
        kind=ref["kind"],
        test=test,
        statistic=statistic,
        threshold=threshold,
        p_value=p_value,
        drifted=bool(drifted),
        rows=current.rows,
        missing_share=current.missing / current.rows if current.rows else 0.0,
        reference_missing_share=reference.missing / reference.rows if reference.rows else 0.0,
        outside=current.outside,
    )


def _test_for(kind: str, method: str, regime: str) -> str:
    if method == "psi":
        return "psi"
    if method != "auto":
        numeric_methods = ("ks", "wasserstein")
        if (method in numeric_methods) != (kind == "numeric"):
            # a numeric test asked for a categorical column (or the reverse): its counterpart
            return _COUNTERPART[method]
        return method
    if kind == "numeric":
        return "ks" if regime == "tests" else "wasserstein"
    return "chi2" if regime == "tests" else "jensenshannon"


_COUNTERPART = {
    "ks": "chi2",
    "chi2": "ks",
    "wasserstein": "jensenshannon",
    "jensenshannon": "wasserstein",
}


def _shares(counts: Any) -> Any:
    total = counts.sum()
    return counts / total if total else counts.astype(float)


def ks(reference: ColumnSketch, current: ColumnSketch) -> tuple[float, float]:
    """Two-sample Kolmogorov-Smirnov over the reference's quantile bins: the largest gap
    between the two cumulative distributions at the bin edges, with scipy's asymptotic
    p-value (as ks_2samp's method="asymp")."""
    import numpy as np
    from scipy.stats import kstwo

    gap = np.abs(np.cumsum(_shares(reference.counts)) - np.cumsum(_shares(current.counts)))
    d = float(gap.max())
    n, m = int(reference.counts.sum()), int(current.counts.sum())
    return d, float(kstwo.sf(d, round(n * m / (n + m))))


def chi2(reference: ColumnSketch, current: ColumnSketch) -> tuple[float, float]:
    """Pearson's chi-squared of the window's category counts against the reference's shares
    (half a count added to every reference bucket, so an unseen category is not a division
    by zero but a large statistic; buckets empty on both sides are left out)."""
    from scipy.stats import chisquare

    observed = current.counts.astype(float)
    keep = (reference.counts > 0) | (observed > 0)  # a bucket neither side has is no category
    expected = reference.counts + 0.5
    expected = expected / expected[keep].sum() * observed.sum()
    if keep.sum() < 2:
        return 0.0, 1.0
    result = chisquare(observed[keep], expected[keep])
    return float(result.statistic), float(result.pvalue)


def wasserstein(reference: ColumnSketch, current: ColumnSketch) -> tuple[float, None]:
    """Wasserstein-1 distance between the two distributions (each bin's mass at its mean),
    divided by the reference's standard deviation: "how many standard deviations apart"."""
    import numpy as np
    from scipy.stats import wasserstein_distance

    def points(sketch: ColumnSketch) -> tuple[Any, Any]:
        used = sketch.counts > 0
        return sketch.sums[used] / sketch.counts[used], sketch.counts[used]

    ref_at, ref_weight = points(reference)
    cur_at, cur_weight = points(current)
    distance = wasserstein_distance(ref_at, cur_at, ref_weight, cur_weight)
    mean = np.average(ref_at, weights=ref_weight)
    std = float(np.sqrt(np.average((ref_at - mean) ** 2, weights=ref_weight)))
    return float(distance / std) if std > 0 else float(distance > 0), None


def jensenshannon(reference: ColumnSketch, current: ColumnSketch) -> tuple[float, None]:
    from scipy.spatial.distance import jensenshannon as js

    return float(js(_shares(reference.counts), _shares(current.counts))), None


def psi(reference: ColumnSketch, current: ColumnSketch) -> tuple[float, None]:
    """Population stability index (shares clipped at 0.0001), over deciles for numbers (the
    quantile bins taken in pairs: the usual 10 bins, less noisy than 20 on small windows)."""
    import numpy as np

    ref_counts, cur_counts = reference.counts, current.counts
    if reference.kind == "numeric" and len(ref_counts) > 10:
        pairs = np.arange(len(ref_counts)) // 2
        ref_counts = np.bincount(pairs, weights=ref_counts)
        cur_counts = np.bincount(pairs, weights=cur_counts)
    ref = np.clip(_shares(ref_counts), 1e-4, None)
    cur = np.clip(_shares(cur_counts), 1e-4, None)
    return float(np.sum((cur - ref) * np.log(cur / ref))), None


TESTS = {
    "ks": ks,
    "chi2": chi2,
    "wasserstein": wasserstein,
    "jensenshannon": jensenshannon,
    "psi": psi,
}


def _quality(profile: dict[str, Any], window: WindowSketch) -> Quality:
    quality = Quality(duplicates=window.duplicates, refused=dict(window.refused))
    for ref, sketch in zip(profile["features"], window.features, strict=True):
        name = ref["name"]
        if sketch.rows and sketch.missing:
            quality.missing[name] = sketch.missing / sketch.rows
        if sketch.outside:
            if ref["kind"] == "numeric":
                quality.out_of_range[name] = sketch.outside
            else:
                quality.unseen[name] = sketch.outside
        present = int(sketch.counts.sum())
        was_constant = ref["kind"] == "numeric" and ref["min"] == ref["max"]
        if present > 1 and not was_constant:
            constant = (
                sketch.minimum == sketch.maximum
                if ref["kind"] == "numeric"
                else int((sketch.counts > 0).sum()) == 1
            )
            if constant:
                quality.constant.append(name)
    return quality
