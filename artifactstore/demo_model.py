"""A real, tiny model for the demo: softmax regression trained in pure Python.

Vocabulary: :func:`load_table` reads one of the bundled classic datasets (the
scikit-learn CSV layout); :func:`train` runs full-batch gradient descent on
standardized features and returns the weights and the training accuracy, so the
demo can log a model, train it further and log the result as a new version.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from importlib import resources

__all__ = ["Model", "load_table", "train"]


@dataclass(frozen=True)
class Model:
    classes: list[str]
    means: list[float]
    scales: list[float]
    weights: list[list[float]]  # one row per class: bias, then one weight per feature
    epochs: int
    accuracy: float

    def to_json(self) -> str:
        return json.dumps(self.__dict__, indent=1, sort_keys=True) + "\n"


def load_table(name: str) -> tuple[list[str], list[list[float]], list[int]]:
    """Class names, feature rows and labels of a bundled dataset (``iris.csv``, …)."""
    text = resources.files("artifactstore.demo.data").joinpath(name).read_text()
    header, *rows = [line.split(",") for line in text.splitlines() if line]
    classes = header[2:]
    features = [[float(v) for v in row[:-1]] for row in rows]
    labels = [int(row[-1]) for row in rows]
    return classes, features, labels


def train(name: str, epochs: int, start: Model | None = None, rate: float = 0.5) -> Model:
    classes, rows, labels = load_table(name)
    n_features = len(rows[0])
    means = [sum(r[j] for r in rows) / len(rows) for j in range(n_features)]
    scales = [
        math.sqrt(sum((r[j] - means[j]) ** 2 for r in rows) / len(rows)) or 1.0
        for j in range(n_features)
    ]
    x = [[1.0] + [(r[j] - means[j]) / scales[j] for j in range(n_features)] for r in rows]
    weights = ([list(w) for w in start.weights] if start is not None
               else [[0.0] * (n_features + 1) for _ in classes])
    for _ in range(epochs):
        grads = [[0.0] * (n_features + 1) for _ in classes]
        for row, label in zip(x, labels, strict=True):
            probs = _softmax([sum(w * v for w, v in zip(ws, row, strict=True))
                              for ws in weights])
            for k, p in enumerate(probs):
                error = p - (1.0 if k == label else 0.0)
                for j, v in enumerate(row):
                    grads[k][j] += error * v / len(x)
        weights = [[w - rate * g for w, g in zip(ws, gs, strict=True)]
                   for ws, gs in zip(weights, grads, strict=True)]
    correct = sum(
        max(range(len(classes)), key=lambda k: sum(w * v for w, v in zip(weights[k], row,
                                                                            strict=True)))
        == label
        for row, label in zip(x, labels, strict=True)
    )
    done = epochs + (start.epochs if start is not None else 0)
    return Model(classes, means, scales, weights, done, correct / len(x))


def _softmax(scores: list[float]) -> list[float]:
    top = max(scores)
    exps = [math.exp(s - top) for s in scores]
    total = sum(exps)
    return [e / total for e in exps]
