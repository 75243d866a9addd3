"""The demo's real model: trained on bundled Iris data, better with more epochs."""

from __future__ import annotations

import json

from artifactstore.demo.model import load_table, train


def test_bundled_datasets_load() -> None:
    for name, rows, classes in (("iris.csv", 150, 3), ("wine.csv", 178, 3),
                                ("breast_cancer.csv", 569, 2)):
        names, features, labels = load_table(name)
        assert (len(features), len(names)) == (rows, classes)
        assert set(labels) == set(range(classes))


def test_training_further_improves_the_model() -> None:
    short = train("iris.csv", epochs=30)
    longer = train("iris.csv", epochs=120, start=short)
    assert longer.epochs == 150
    assert longer.accuracy > short.accuracy >= 0.8
    assert json.loads(longer.to_json())["classes"] == ["setosa", "versicolor", "virginica"]
