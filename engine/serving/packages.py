"""What a server of a model imports (engine/serving), nothing more: no textual, boto3 or docker.

A leaf (it imports nothing): an image is built with these packages (engine.container.context,
pinned to the versions that trained the model), and the workers of a Dask cluster must have
them at haj's versions (engine.cluster), since a bundle's pickle loads only under them.
"""

from __future__ import annotations

SERVING_PACKAGES = (
    "scikit-learn",
    "scipy",
    "numpy",
    "pandas",
    "joblib",
    "cloudpickle",
    "fastapi",
    "uvicorn[standard]",
    "prometheus_client",
    "orjson",
    "swagger-ui-bundle",
)
