"""Extra candidate models for this project. This file is yours: add, tune or remove models here.

`models()` returns a dict of name -> unfitted scikit-learn-style estimator (anything with fit and
predict). haj wraps each one in the same preprocessing pipeline as its built-in catalog (imputation
of missing values, scaling of numbers, one-hot encoding of categories) and trains it beside the
catalog models on every `haj train`. Train only one with `haj train {{name}} -m NAME`.

Names must not clash with the built-in ones (logistic_regression, random_forest, svc, knn, ...).
Packages beyond scikit-learn, pandas and numpy go in requirements.txt.
"""

from __future__ import annotations

from typing import Any

from sklearn.linear_model import LogisticRegression


def models() -> dict[str, Any]:
    """Candidate classifiers trained beside haj's built-in catalog."""
    return {
        # Weighs classes by their rarity: helps when one class is much rarer than the others.
        "balanced_logistic_regression": LogisticRegression(class_weight="balanced", max_iter=2000),
    }
