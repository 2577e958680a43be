"""From a processed DataFrame to a model's input, identically at training and serving time.

Why arrays, not DataFrames: the trained pipeline takes a 2-D array in a fixed column order, so the
server can turn a JSON record into an array without building a DataFrame per request. The feature
spec (name, kind) travels inside the model bundle and is the model's signature.
"""

from __future__ import annotations

from typing import Any

BUNDLE_FORMAT = "haj-model/1"


def feature_spec(frame: Any) -> list[dict[str, str]]:
    """[{name, kind}] with kind 'numeric' or 'categorical', in the frame's column order."""
    import pandas as pd

    spec = []
    for name in frame.columns:
        dtype = frame[name].dtype
        numeric = pd.api.types.is_numeric_dtype(dtype) and not pd.api.types.is_bool_dtype(dtype)
        spec.append({"name": str(name), "kind": "numeric" if numeric else "categorical"})
    return spec


def all_numeric(spec: list[dict[str, str]]) -> bool:
    return all(f["kind"] == "numeric" for f in spec)


def to_matrix(frame: Any, spec: list[dict[str, str]]) -> Any:
    """The model's input array: float64 when every feature is numeric, else object."""
    import numpy as np
    import pandas as pd

    names = [f["name"] for f in spec]
    frame = frame[names]
    if all_numeric(spec):
        return frame.to_numpy(dtype=np.float64, na_value=np.nan)
    columns = []
    for feature in spec:
        column = frame[feature["name"]]
        if feature["kind"] == "numeric":
            values = pd.to_numeric(column, errors="coerce").to_numpy(dtype=np.float64)
            columns.append(values.astype(object))
        else:
            # missing stays NaN (imputed by the pipeline), not the category "nan"
            missing = column.isna().to_numpy()
            values = column.astype(object).to_numpy(dtype=object)
            columns.append(
                np.array(
                    [np.nan if gone else str(v) for v, gone in zip(values, missing, strict=True)],
                    dtype=object,
                )
            )
    return np.column_stack(columns) if columns else np.empty((len(frame), 0), dtype=object)


def make_pipeline(spec: list[dict[str, str]], estimator: Any) -> Any:
    """Impute + scale numeric columns, impute + one-hot categorical ones, then the estimator."""
    from sklearn.compose import ColumnTransformer
    from sklearn.impute import SimpleImputer
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import OneHotEncoder, StandardScaler

    numeric = [i for i, f in enumerate(spec) if f["kind"] == "numeric"]
    categorical = [i for i, f in enumerate(spec) if f["kind"] == "categorical"]
    numeric_steps = Pipeline(
        [("impute", SimpleImputer(strategy="median")), ("scale", StandardScaler())]
    )
    if not categorical:
        return Pipeline([("prep", numeric_steps), ("model", estimator)])
    transformers: list[tuple[str, Any, list[int]]] = []
    if numeric:
        transformers.append(("numeric", numeric_steps, numeric))
    transformers.append(
        (
            "categorical",
            Pipeline(
                [
                    ("impute", SimpleImputer(strategy="most_frequent")),
                    (
                        "onehot",
                        OneHotEncoder(
                            handle_unknown="ignore", sparse_output=False, max_categories=50
                        ),
                    ),
                ]
            ),
            categorical,
        )
    )
    return Pipeline(
        [("prep", ColumnTransformer(transformers, sparse_threshold=0)), ("model", estimator)]
    )


MAX_DOMAIN_CATEGORIES = 10_000  # beyond this many categories a feature's values are not checked


def value_domain(X: Any, spec: list[dict[str, str]]) -> list[dict[str, Any]]:
    """What training saw of each feature, in spec order: {"min", "max"} of a numeric feature,
    {"categories": [...]} of a categorical one (None past MAX_DOMAIN_CATEGORIES). The server
    flags values outside it (engine.serving.domain)."""
    import numpy as np

    domain: list[dict[str, Any]] = []
    for j, feature in enumerate(spec):
        column = X[:, j]
        if feature["kind"] == "numeric":
            values = column.astype(np.float64)
            finite = values[np.isfinite(values)]
            domain.append(
                {"min": float(finite.min()), "max": float(finite.max())}
                if finite.size
                else {"min": None, "max": None}
            )
        else:
            seen = {v for v in column.tolist() if isinstance(v, str)}
            domain.append(
                {"categories": sorted(seen) if len(seen) <= MAX_DOMAIN_CATEGORIES else None}
            )
    return domain
