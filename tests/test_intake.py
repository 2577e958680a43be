"""Processing that travels with the model (engine.intake, the template's Processor) and the
server's view of raw rows (engine.serving.raw, engine.serving.domain), without a server."""

from __future__ import annotations

import importlib.util
import io
from types import ModuleType
from typing import Any

import numpy as np
import pandas as pd
import pytest

from engine import intake
from engine.errors import DataError
from engine.features import feature_spec, to_matrix, value_domain
from engine.serving.domain import Domain, refuse_unseen
from engine.serving.inputs import InputError
from engine.serving.raw import RawIntake
from engine.templates import templates_root
from tests.raw_tables import penguin_rows, to_csv


def template_module() -> ModuleType:
    spec = importlib.util.spec_from_file_location(
        "haj_project_processor", templates_root() / "common" / "processor.py"
    )
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def penguins() -> pd.DataFrame:
    return pd.read_csv(io.StringIO(to_csv(penguin_rows())))


def fitted(raw: pd.DataFrame | None = None) -> tuple[pd.DataFrame, intake.Intake]:
    return intake.fit(
        template_module(), penguins() if raw is None else raw, "Species", "classification"
    )


def test_the_template_processor_learns_a_plan_and_replays_it_on_single_rows(
    capsys: pytest.CaptureFixture[str],
) -> None:
    raw = penguins()
    processed, taken = fitted(raw)
    out = capsys.readouterr().out
    assert "dropped identifier columns: Sample Number, Individual ID" in out  # a counter, an id
    assert "dropped free-text columns: Comments" in out
    assert "year only: Year" in out
    assert "'female' as 'FEMALE'" in out or "' female ' as 'FEMALE'" in out
    assert "dropped empty or constant columns: Date Egg_year" in out  # every egg in 2008
    assert list(processed.columns) == [
        "Species",
        "Island",
        "Date Egg_month",
        "Date Egg_day",
        "Date Egg_dayofweek",
        "Year_year",  # no month, day or day of week for a year written as a date
        "Culmen Length (mm)",
        "Flipper Length (mm)",
        "Body Mass (g)",
        "Sex",
    ]
    assert set(processed["Sex"]) == {"MALE", "FEMALE"}
    assert processed["Body Mass (g)"].dtype.kind == "f"
    assert taken.accepts_raw and taken.style == "processor" and not taken.passthrough
    assert "Comments" not in taken.required and "Island" in taken.required
    assert taken.example["Sample Number"] == 1 and "Species" not in taken.example

    # the fitted processor, as the server loads it, gives row i exactly what training got
    processor = intake.loads(taken.processor)  # type: ignore[arg-type]
    features = [c for c in processed.columns if c != "Species"]
    for i in (0, 12, 100):
        row = raw.drop(columns=["Species"]).iloc[[i]].reset_index(drop=True)
        one = processor.transform(row)
        assert list(one.columns) == features
        pd.testing.assert_frame_equal(
            one, processed[features].iloc[[i]].reset_index(drop=True), check_dtype=False
        )


def test_a_category_training_never_saw_is_kept_as_sent_and_another_spelling_is_respelled() -> None:
    _, taken = fitted()
    processor = intake.loads(taken.processor)  # type: ignore[arg-type]
    row = penguins().drop(columns=["Species"]).iloc[[0]].reset_index(drop=True)
    row.loc[0, "Sex"] = "female"
    row.loc[0, "Island"] = "Atlantis"
    out = processor.transform(row)
    assert out.loc[0, "Sex"] == "FEMALE" and out.loc[0, "Island"] == "Atlantis"


def test_an_all_numeric_table_is_passed_through_and_dropped_columns_may_still_be_sent() -> None:
    rng = np.random.default_rng(0)
    raw = pd.DataFrame(
        {
            "id": range(1, 61),
            "a": rng.normal(size=60),
            "b": rng.normal(size=60),
            "label": [0, 1] * 30,
        }
    )
    processed, taken = intake.fit(template_module(), raw, "label", "classification")
    assert taken.passthrough and taken.required == ["a", "b"]
    spec = feature_spec(processed.drop(columns=["label"]))
    served = RawIntake({**taken.meta(), "processor": taken.processor}, spec)
    X = served.matrix([{"id": 7, "a": 0.5, "b": None}, {"a": 1.0, "b": 2.0, "label": 1}])
    assert X.dtype == np.float64 and X.shape == (2, 2) and np.isnan(X[0, 1])
    with pytest.raises(InputError, match="missing field 'b'"):
        served.matrix([{"a": 1.0}])
    with pytest.raises(InputError, match="unknown field 'c'"):
        served.matrix([{"a": 1.0, "b": 2.0, "c": 3}])


def test_raw_rows_are_checked_by_the_raw_columns_then_processed() -> None:
    processed, taken = fitted()
    spec = feature_spec(processed.drop(columns=["Species"]))
    served = RawIntake({**taken.meta(), "processor": taken.processor}, spec)
    record: dict[str, Any] = dict(taken.example)
    X = served.matrix([record, {**record, "Body Mass (g)": 4200, "Comments": None}])
    assert X.shape == (2, len(spec))
    column = [f["name"] for f in spec].index("Body Mass (g)")
    assert X[1, column] == 4200.0  # a number sent for a column written as text
    with pytest.raises(InputError, match="unknown field 'Wingspan'") as unknown:
        served.matrix([{**record, "Wingspan": 3}])
    assert unknown.value.field == "Wingspan"
    missing = {k: v for k, v in record.items() if k != "Island"}
    with pytest.raises(InputError, match="missing field 'Island'"):
        served.matrix([missing])
    optional = {k: v for k, v in record.items() if k != "Comments"}  # dropped: need not be sent
    assert served.matrix([optional]).shape == (1, len(spec))
    with pytest.raises(InputError, match="'Sample Number' must be a number"):
        served.matrix([{**record, "Sample Number": "seven"}])


def test_values_training_never_saw_are_flagged_and_can_be_refused() -> None:
    frame = pd.DataFrame({"x": [1.0, 2.0, 3.0], "island": ["Dream", "Biscoe", "Dream"]})
    spec = feature_spec(frame)
    domain = Domain(value_domain(to_matrix(frame, spec), spec), ["x", "island"])
    seen = to_matrix(pd.DataFrame({"x": [2.5, np.nan], "island": ["Biscoe", np.nan]}), spec)
    assert domain.check(seen) is None  # within the range, known or missing: nothing to say
    new = to_matrix(pd.DataFrame({"x": [9.0, 2.0], "island": ["Dream", "Atlantis"]}), spec)
    flags = domain.check(new)
    assert flags == [{"out_of_range": {"x": 9.0}}, {"unseen": {"island": "Atlantis"}}]
    with pytest.raises(InputError, match="record 1: field 'island' has the value 'Atlantis'"):
        refuse_unseen(flags)


def process_function_module(source: str) -> ModuleType:
    module = ModuleType("haj_project_processor")
    exec(source, module.__dict__)  # a processor.py of the older, function-only shape
    return module


def test_a_plain_process_function_that_keeps_rows_is_applied_per_request() -> None:
    module = process_function_module(
        "def process(raw, target):\n"
        "    out = raw.drop(columns=['Comments', 'Individual ID'])\n"
        "    out['Body Mass (g)'] = out['Body Mass (g)'].str.replace(',', '').astype(float)\n"
        "    return out\n"
    )
    raw = penguins()
    processed, taken = intake.fit(module, raw, "Species", "classification")
    assert taken.accepts_raw and taken.style == "process-function"
    processor = intake.loads(taken.processor)  # type: ignore[arg-type]
    out = processor.transform(raw.drop(columns=["Species"]).head(3))
    assert len(out) == 3 and "Species" not in out.columns
    assert out["Body Mass (g)"].tolist() == processed["Body Mass (g)"].head(3).tolist()


def test_a_plain_process_function_that_needs_labels_keeps_the_processed_schema() -> None:
    module = process_function_module(
        "def process(raw, target):\n"
        "    out = raw.dropna(subset=[target]).drop_duplicates()\n"
        "    if out[target].nunique() < 2:\n"
        "        raise ValueError('a single class')\n"
        "    return out.drop(columns=['Comments'])\n"
    )
    _, taken = intake.fit(module, penguins(), "Species", "classification")
    assert not taken.accepts_raw and taken.processor is None
    assert taken.reason == "process() fails on request rows (ValueError: a single class)"


def test_a_transform_that_drops_rows_is_refused_at_processing() -> None:
    module = process_function_module(
        "class Processor:\n"
        "    def __init__(self, target, prediction):\n"
        "        self.target = target\n"
        "    def fit(self, raw):\n"
        "        return self\n"
        "    def transform(self, raw):\n"
        "        return raw.dropna()\n"
    )
    with pytest.raises(DataError, match="must keep every row"):
        intake.fit(module, penguins(), "Species", "classification")


def test_every_row_without_a_label_is_said_so() -> None:
    raw = penguins().assign(Species=np.nan)
    with pytest.raises(ValueError, match="every row lacks a 'Species' value"):
        fitted(raw)


def test_a_header_that_repeats_a_column_name_is_reported(tmp_path: Any) -> None:
    from engine.data import repeated_columns

    table = tmp_path / "v0001.csv"
    table.write_text("a,b,a,label\n1,2,3,x\n")
    assert repeated_columns(table, "csv") == ["a"]
    table.write_text("a,b,c,label\n1,2,3,x\n")
    assert repeated_columns(table, "csv") == []


def test_a_class_with_a_single_row_is_named_when_the_split_cannot_be_stratified() -> None:
    from engine.training import _unstratified

    message = _unstratified(np.array(["a"] * 10 + ["b"] * 10 + ["rare"]), "kind")
    assert "'kind' has 1 class(es) with a single row ('rare')" in message
    assert "not stratified" in message
