"""``fraudflow labels``: a file of labels into the lake, all or nothing, one-line errors; the sets' cut-off option."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest
from typer.testing import CliRunner, Result

from fraudflow import WorldParams, generate
from fraudflow.cli import app
from fraudflow.features import build_features
from fraudflow.lake import Lake
from fraudflow.store import labels

runner = CliRunner()


def said(result: Result) -> str:
    """The output as one line (rich wraps at 80 columns off a terminal)."""
    return " ".join(result.output.split())


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("labels-cli")
    generate(root, WorldParams(n_customers=100, n_terminals=200, nb_days=25, radius=20.0))
    build_features(root)
    return root


def test_labels_are_loaded_with_source_and_analyst(world: Path, tmp_path: Path) -> None:
    lake = Lake(tmp_path / "lake")
    file = tmp_path / "reviewed.csv"
    file.write_text("TRANSACTION_ID,TX_FRAUD,LABEL_TIME\n3,1,2018-04-20T10:00:00\n4,0,2018-04-21T11:00:00\n")
    args = ["labels", "--data", str(tmp_path / "lake"), str(file), "--source", "analyst", "--analyst", "ana"]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    assert "2 labels (1 fraud) from" in said(result) and "2018-04-20 10:00:00 .. 2018-04-21 11:00:00" in said(result)
    got = labels.read(lake).to_pylist()
    assert [(r["TRANSACTION_ID"], r["TX_FRAUD"], r["SOURCE"], r["ANALYST"]) for r in got] == [
        (3, 1, "analyst", "ana"),
        (4, 0, "analyst", "ana"),
    ]


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("TRANSACTION_ID,TX_FRAUD\n1,1\n2,0\n3,7\n", "bad.csv: row 3, column TX_FRAUD: 7 is not a label (0 or 1)"),
        ("TRANSACTION_ID,TX_FRAUD,COMMENT\n1,1,x\n", "bad.csv: unknown column 'COMMENT'"),
        ("TRANSACTION_ID,TX_FRAUD\n1,1\n123456789,1\n", "row 2, column TRANSACTION_ID: 123456789 is not a transaction"),
    ],
)
def test_bad_input_is_one_line_naming_file_row_column_and_writes_nothing(
    world: Path, tmp_path: Path, text: str, message: str
) -> None:
    bad = tmp_path / "bad.csv"
    bad.write_text(text)
    result = runner.invoke(app, ["labels", "--data", str(world), str(bad)])
    assert result.exit_code == 2
    assert result.output.startswith("error: ") and message in result.output
    assert result.output.count("\n") == 1 and "Traceback" not in result.output
    assert not labels.exists(Lake(world))


def test_a_missing_file_is_an_error(tmp_path: Path) -> None:
    result = runner.invoke(app, ["labels", "--data", str(tmp_path), str(tmp_path / "none.csv")])
    assert result.exit_code == 2 and "none.csv: cannot read labels" in result.output


def test_training_set_uses_the_labels_known_at_the_cutoff(world: Path, tmp_path: Path) -> None:
    import shutil

    root = tmp_path / "lake"
    shutil.copytree(world, root)
    labels.record(Lake(root), {1: 1, 2: 1}, label_time=dt.datetime(2018, 4, 5))
    labels.record(Lake(root), {3: 1}, label_time=dt.datetime(2018, 4, 12))
    labels.record(Lake(root), {4: 1}, label_time=dt.datetime(2018, 4, 15, 0, 0, 1))  # after the default cut-off
    base = ["training-set", "--data", str(root), "--start", "2018-04-01"]
    result = runner.invoke(app, base)
    assert result.exit_code == 0, result.output
    assert "3 frauds (labels known at 2018-04-15 00:00:00)" in said(result)
    result = runner.invoke(app, [*base, "--labels-as-of", "2018-04-10"])
    assert "2 frauds (labels known at 2018-04-10 00:00:00)" in said(result)
    result = runner.invoke(app, [*base, "--labels-as-of", "soon"])
    assert result.exit_code == 2 and "--labels-as-of: 'soon' is not a time" in said(result)
