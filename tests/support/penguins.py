"""A trained project on the raw penguin table (tests/raw_tables.py): the fixture shared by the
raw-serving, operate and retrain tests, and its per-test copy."""

from __future__ import annotations

import shutil
from pathlib import Path

from tests.raw_tables import penguin_rows, to_csv
from tests.support import call_haj

TARGET = "Species"


LR_DT = ("logistic_regression", "decision_tree")  # a fast linear model and a fast tree


def train_penguins(home: Path, models: tuple[str, ...] = ("logistic_regression", "random_forest"),
                   rows: int = 240) -> Path:  # fmt: skip
    """`haj init penguins` on penguins.csv (in `home`), retrieve, train `models`, evaluate;
    one worker (n_jobs = 1). Returns the project's directory."""
    source = home / "penguins.csv"
    source.write_text(to_csv(penguin_rows(rows)))
    for args in (
        ["init", "penguins", "-p", "classification", "--url", str(source), "--target", TARGET],
        ["retrieve", "penguins"],
        ["train", "penguins", "-m", *models],
        ["evaluate", "penguins"],
    ):
        result = call_haj(home, *args)
        assert result.code == 0, result.text
        if args[0] == "init":
            config = home / "penguins" / "config.toml"
            config.write_text(config.read_text().replace("n_jobs = -1", "n_jobs = 1", 1))
    return home / "penguins"


def copy_home(trained: Path, target: Path) -> Path:
    """A copy of a trained workspace whose data source points at the copy's own file."""
    shutil.copytree(trained, target, symlinks=True)
    config = target / "penguins" / "config.toml"
    config.write_text(config.read_text().replace(str(trained), str(target)))
    return target
