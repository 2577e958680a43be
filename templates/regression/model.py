"""Extra candidate models for this project. This file is yours: add, tune or remove models here.

`models()` returns a dict of name -> unfitted scikit-learn-style estimator (anything with fit and
predict). haj wraps each one in the same preprocessing pipeline as its built-in catalog (imputation
of missing values, scaling of numbers, one-hot encoding of categories) and trains it beside the
catalog models on every `haj train`. Train only one with `haj train {{name}} -m NAME`.

Names must not clash with the built-in ones (linear_regression, ridge, random_forest, svr, ...).
Packages beyond scikit-learn, pandas and numpy go in requirements.txt.
"""

from __future__ import annotations

from typing import Any

from sklearn.linear_model import HuberRegressor


def models() -> dict[str, Any]:
    """Candidate regressors trained beside haj's built-in catalog."""
    return {
        # A linear model that is robust to outliers in the target.
        "huber": HuberRegressor(max_iter=1000),
    }
