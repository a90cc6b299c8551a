"""The breast-cancer data set and request bodies drawn from it.

The server trains on it and the load generator sends rows of it, so both agree on the feature
count and on what realistic inputs look like. The CSV is read straight from scikit-learn's
package folder rather than through `sklearn.datasets`: importing scikit-learn costs about a
second and 100 MB per process, and up to twenty model servers start at once. Nothing is
downloaded.
"""

from __future__ import annotations

import importlib.util
import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import numpy.typing as npt

FloatArray = npt.NDArray[np.float64]

_BASE_NAMES = (
    "radius", "texture", "perimeter", "area", "smoothness",
    "compactness", "concavity", "concave_points", "symmetry", "fractal_dimension",
)
#: The 30 feature names, in column order (scikit-learn's names in snake case).
FEATURE_NAMES: tuple[str, ...] = (
    tuple(f"mean_{n}" for n in _BASE_NAMES)
    + tuple(f"{n}_error" for n in _BASE_NAMES)
    + tuple(f"worst_{n}" for n in _BASE_NAMES)
)
FEATURE_COUNT = len(FEATURE_NAMES)


@dataclass(frozen=True)
class Dataset:
    """Raw (unstandardised) features `x` of shape (n, 30) and 0/1 targets `y` (1 = benign)."""

    x: FloatArray
    y: FloatArray


def _csv_path() -> Path | None:
    spec = importlib.util.find_spec("sklearn")  # finds the package without importing it
    if spec is None or spec.origin is None:
        return None
    path = Path(spec.origin).parent / "datasets" / "data" / "breast_cancer.csv"
    return path if path.is_file() else None


def load() -> Dataset:
    """Loads the 569 rows; falls back to `sklearn.datasets` if the CSV moved."""
    path = _csv_path()
    if path is not None:
        table = np.loadtxt(path, delimiter=",", skiprows=1, dtype=np.float64)
        x, y = table[:, :FEATURE_COUNT], table[:, FEATURE_COUNT]
    else:  # pragma: no cover - only if scikit-learn reorganises its data folder
        from sklearn.datasets import load_breast_cancer

        x, y = load_breast_cancer(return_X_y=True)
    if x.shape[1] != FEATURE_COUNT:
        raise RuntimeError(f"breast-cancer data has {x.shape[1]} features, expected {FEATURE_COUNT}")
    return Dataset(x=np.ascontiguousarray(x, dtype=np.float64), y=np.asarray(y, dtype=np.float64))


def sample_rows(data: Dataset, count: int, noise: float = 0.05, seed: int | None = None) -> FloatArray:
    """Draws `count` rows with replacement and adds Gaussian noise of `noise` feature std devs.

    >>> sample_rows(load(), 3, seed=1).shape
    (3, 30)
    """
    rng = np.random.default_rng(seed)
    picked = data.x[rng.integers(0, len(data.x), size=count)]
    jitter = rng.normal(0.0, noise, size=picked.shape) * data.x.std(axis=0)
    # The data's features are all non-negative (sizes, ratios): keep them so.
    clipped: FloatArray = np.clip(picked + jitter, 0.0, None)
    return clipped


def request_bodies(count: int, noise: float = 0.05, seed: int | None = None) -> list[bytes]:
    """`count` JSON bodies `{"features": [...]}` for POST /v1/predict, ready to send."""
    rows = sample_rows(load(), count, noise=noise, seed=seed)
    return [json.dumps({"features": [round(float(v), 6) for v in row]}).encode() for row in rows]

