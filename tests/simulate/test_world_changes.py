"""Changes of the world from a given day (docs/WORLD_CHANGES.md): deterministic, nothing before
their day touched, recorded in the lake and kept by a continuation, visible from their day on."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pytest

from fraudflow import ConfigError, WorldParams, generate
from fraudflow.simulate.changes import (
    CompromisedTerminals,
    SpendingShift,
    UnderThresholdFrauds,
    changes_from_json,
    parse_change,
)
from fraudflow.simulate.frauds import CUSTOMER_DAYS
from fraudflow.simulate.world import customer_phases, make_profiles, shifted_customers
from tests.conftest import read_lake_table

BASE = WorldParams(n_customers=400, n_terminals=600, nb_days=70, radius=8.0)
D = 40  # the day the changes start
CHANGES = {
    "spending": SpendingShift(D, share=0.5, amount=2.0, tx=1.5),
    "terminals": CompromisedTerminals(D, count=12),
    "under_threshold": UnderThresholdFrauds(D, customers=6),
}


def _with(*changes: object, nb_days: int = BASE.nb_days) -> WorldParams:
    return dataclasses.replace(BASE, nb_days=nb_days, changes=tuple(changes))  # type: ignore[arg-type]


@pytest.fixture(scope="module")
def lakes(tmp_path_factory: pytest.TempPathFactory) -> dict[str, pa.Table]:
    """The unchanged world and one world per kind of change, generated once."""
    out = {}
    for name, params in [("none", BASE), *((k, _with(c)) for k, c in CHANGES.items())]:
        root = tmp_path_factory.mktemp(name)
        generate(root, params)
        out[name] = read_lake_table(root)
    return out


def _days(t: pa.Table, lo: int, hi: int) -> pa.Table:
    d = t["TX_TIME_DAYS"]
    return t.filter(pc.and_(pc.greater_equal(d, lo), pc.less(d, hi)))


@pytest.mark.parametrize("kind", list(CHANGES))
def test_days_before_the_change_equal_the_unchanged_world(lakes: dict[str, pa.Table], kind: str) -> None:
    """Every column, labels and TRANSACTION_IDs included, even the scenario 3 choices whose window spans D."""
    before = _days(lakes[kind], 0, D)
    assert before.num_rows > 20_000 and _per_day(before, 3, D - CUSTOMER_DAYS + 1, D) > 0
    assert before.equals(_days(lakes["none"], 0, D))
    assert not _days(lakes[kind], D, BASE.nb_days).equals(_days(lakes["none"], D, BASE.nb_days))


def test_same_world_and_changes_give_the_same_rows_whatever_the_run(tmp_path: Path, lakes: dict[str, pa.Table]) -> None:
    params = _with(*CHANGES.values())
    generate(tmp_path / "a", params)
    generate(tmp_path / "b", params, chunk_customers=37, workers=1, spill=True)
    a, b = read_lake_table(tmp_path / "a"), read_lake_table(tmp_path / "b")
    assert a.equals(b)
    assert _days(a, 0, D).equals(_days(lakes["none"], 0, D))


def test_a_spending_shift_moves_its_customers_amounts_and_counts_from_its_day(lakes: dict[str, pa.Table]) -> None:
    shift = CHANGES["spending"]
    assert isinstance(shift, SpendingShift)
    shifted = shifted_customers(shift, BASE.n_customers)
    assert shifted.sum() == round(shift.share * BASE.n_customers)
    base, changed = lakes["none"], lakes["spending"]

    def stats(t: pa.Table, lo: int, hi: int, who: np.ndarray) -> tuple[float, float]:
        t = _days(t, lo, hi)
        t = t.filter(pa.array(who[t["CUSTOMER_ID"].to_numpy()]))
        t = t.filter(pc.less(t["TX_FRAUD_SCENARIO"], 3))  # amounts as drawn (scenario 3 multiplies them)
        return float(np.mean(t["TX_AMOUNT"].to_numpy())), t.num_rows / (hi - lo)

    before, after = stats(changed, D - 20, D, shifted), stats(changed, D, BASE.nb_days, shifted)
    base_after = stats(base, D, BASE.nb_days, shifted)
    assert before == stats(base, D - 20, D, shifted)
    assert 1.8 < after[0] / base_after[0] < 2.2  # amount x2
    assert 1.35 < after[1] / base_after[1] < 1.65  # transactions per day x1.5
    # the others' transactions are untouched (their labels may not be: compromised terminals are shared)
    cols = ["TX_DATETIME", "CUSTOMER_ID", "TERMINAL_ID", "TX_TIME_SECONDS"]
    others = [t.filter(pa.array(~shifted[t["CUSTOMER_ID"].to_numpy()])).select(cols) for t in (changed, base)]
    assert others[0].equals(others[1])


def _per_day(t: pa.Table, scenario: int, lo: int, hi: int) -> int:
    return int(pc.sum(pc.equal(_days(t, lo, hi)["TX_FRAUD_SCENARIO"], scenario)).as_py() or 0)


def test_more_compromised_terminals_raise_scenario_2_from_its_day(lakes: dict[str, pa.Table]) -> None:
    base, changed = lakes["none"], lakes["terminals"]
    assert _per_day(changed, 2, 0, D) == _per_day(base, 2, 0, D)
    # terminals compromised from D on add up over 28 days: frauds from the change on, then many more
    assert _per_day(changed, 2, D, BASE.nb_days) > 3 * _per_day(base, 2, D, BASE.nb_days)
    assert _per_day(changed, 2, D, D + 1) > _per_day(base, 2, D, D + 1)


def test_under_threshold_frauds_appear_from_their_day_just_under_the_amount_rule(lakes: dict[str, pa.Table]) -> None:
    changed = lakes["under_threshold"]
    change = CHANGES["under_threshold"]
    assert isinstance(change, UnderThresholdFrauds)
    four = changed.filter(pc.equal(changed["TX_FRAUD_SCENARIO"], 4))
    assert four.num_rows > 100
    assert pc.min(four["TX_TIME_DAYS"]).as_py() >= D
    amounts = four["TX_AMOUNT"].to_numpy()
    assert (amounts >= change.low).all() and (amounts <= change.high).all()
    assert pc.all(pc.equal(four["TX_FRAUD"], 1)).as_py()
    # the same transactions as in the unchanged world, only amount and labels differ
    ids = four["TRANSACTION_ID"]
    base = lakes["none"].filter(pc.is_in(lakes["none"]["TRANSACTION_ID"], ids))
    assert base["TERMINAL_ID"].equals(four["TERMINAL_ID"])
    assert _per_day(changed, 4, D, BASE.nb_days) == four.num_rows


def test_a_continuation_keeps_applying_the_recorded_changes(tmp_path: Path) -> None:
    """A run without changes continuing a lake with changes gets them from world.json."""
    params = _with(*CHANGES.values())
    generate(tmp_path / "once", params)
    generate(tmp_path / "steps", dataclasses.replace(params, nb_days=50))
    recorded = json.loads((tmp_path / "steps" / "world" / "world.json").read_text())["params"]["changes"]
    assert changes_from_json(recorded) == params.changes
    generate(tmp_path / "steps", BASE, from_day=50)  # BASE: no changes given
    once, steps = read_lake_table(tmp_path / "once"), read_lake_table(tmp_path / "steps")
    assert _days(steps, 50, 70).equals(_days(once, 50, 70))
    assert _per_day(steps, 4, 50, 70) > 0


def test_a_change_can_start_on_the_first_day_a_lake_does_not_hold(tmp_path: Path, lakes: dict[str, pa.Table]) -> None:
    generate(tmp_path, dataclasses.replace(BASE, nb_days=D))
    generate(tmp_path, _with(CHANGES["spending"]), from_day=D)
    assert _days(read_lake_table(tmp_path), D, BASE.nb_days).equals(_days(lakes["spending"], D, BASE.nb_days))
    recorded = json.loads((tmp_path / "world" / "world.json").read_text())["params"]
    assert recorded["nb_days"] == BASE.nb_days and len(recorded["changes"]) == 1


def test_a_new_change_on_days_already_written_is_refused(tmp_path: Path) -> None:
    generate(tmp_path, dataclasses.replace(BASE, nb_days=D))
    before = read_lake_table(tmp_path)
    world = (tmp_path / "world" / "world.json").read_text()
    with pytest.raises(ConfigError, match=f"already holds days 0..{D - 1} .* start on day {D} or later"):
        generate(tmp_path, _with(CompromisedTerminals(D - 1, count=5)), from_day=D)
    assert read_lake_table(tmp_path).equals(before)
    assert (tmp_path / "world" / "world.json").read_text() == world


def test_a_world_without_changes_is_recorded_as_before() -> None:
    assert "changes" not in BASE.to_json()
    params = _with(*CHANGES.values())
    assert WorldParams.from_json(json.loads(json.dumps(params.to_json()))) == params


def test_changes_are_kept_in_day_order() -> None:
    late, early = CompromisedTerminals(50, count=1), SpendingShift(10, amount=2.0)
    assert _with(late, early).changes == (early, late)


def test_spending_shifts_multiply_the_profiles_of_their_customers() -> None:
    profiles = make_profiles(BASE)
    a, b = SpendingShift(10, share=0.5, amount=2.0, tx=0.5), SpendingShift(20, amount=3.0)
    ids = np.arange(BASE.n_customers)
    ph = customer_phases(profiles, (a, b), ids)
    assert ph.phase_day.reshape(-1, 3)[0].tolist() == [0, 10, 20]
    mean = ph.mean.reshape(-1, 3)
    hit = shifted_customers(a, BASE.n_customers)
    assert np.array_equal(mean[:, 0], profiles.mean_amount)
    assert np.array_equal(mean[:, 1], np.where(hit, profiles.mean_amount * 2.0, profiles.mean_amount))
    assert np.array_equal(mean[:, 2], mean[:, 1] * 3.0)
    assert np.array_equal(ph.std.reshape(-1, 3), mean / 2)
    assert np.array_equal(customer_phases(profiles, (a, b), ids, as_of=15).phase_day[:2], [0, 10])


def test_change_specs_parse() -> None:
    assert parse_change("spending:120:share=0.3,amount=2") == SpendingShift(120, share=0.3, amount=2.0)
    assert parse_change("terminals:5") == CompromisedTerminals(5)
    assert parse_change("under_threshold:7:customers=4,low=150") == UnderThresholdFrauds(7, customers=4, low=150.0)


@pytest.mark.parametrize(
    "spec,message",
    [
        ("spending", r"expected KIND:FROM_DAY\[:NAME=VALUE,...\]"),
        ("spending:1:a=1:b", r"expected KIND:FROM_DAY"),
        ("flood:3", "unknown change kind 'flood'; expected one of spending, terminals, under_threshold"),
        ("spending:x", "from_day must be an integer day index >= 0, got 'x'"),
        ("spending:-2", "from_day must be an integer day index >= 0, got -2"),
        ("spending:3:share", "parameter 'share' must be NAME=VALUE"),
        ("spending:3:share=0.5,share=1", "parameter 'share' given twice"),
        ("spending:3:count=4", r"unknown parameter\(s\) \['count'\] for spending; expected share, amount, tx"),
        ("spending:3:share=2", r"share must be a number in \(0, 1\], got 2.0"),
        ("spending:3:amount=abc", "amount must be a finite number, got 'abc'"),
        ("terminals:3:count=1.5", "count must be an integer, got '1.5'"),
        ("under_threshold:3:low=230", "low must be 0 <= low < high"),
    ],
)
def test_malformed_change_specs_say_what_is_wrong(spec: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        parse_change(spec)


def test_malformed_change_lists_name_the_entry() -> None:
    with pytest.raises(ConfigError, match=r"changes\[1\]: expected an object with 'kind' and 'from_day'"):
        changes_from_json([{"kind": "terminals", "from_day": 3}, {"kind": "spending"}])
    with pytest.raises(ConfigError, match="expected a JSON list of changes, got dict"):
        changes_from_json({"kind": "terminals"})
    with pytest.raises(ConfigError, match=r"changes\[0\]: from_day must be an integer"):
        changes_from_json([{"kind": "terminals", "from_day": True}])


def test_the_command_line_takes_changes_and_refuses_malformed_ones(tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from fraudflow.cli import app

    runner = CliRunner()
    world = ["generate", "--customers", "200", "--terminals", "300", "--radius", "8", "--days", "30"]
    file = tmp_path / "changes.json"
    file.write_text(json.dumps([{"kind": "under_threshold", "from_day": 20, "customers": 5}]))
    ok = runner.invoke(
        app,
        [*world, "--out", str(tmp_path / "a"), "--change", "spending:20:amount=2", "--changes", str(file), "--json"],
    )
    assert ok.exit_code == 0, ok.output
    assert json.loads(ok.output)["frauds_by_scenario"]["4"] > 0
    recorded = json.loads((tmp_path / "a" / "world" / "world.json").read_text())["params"]["changes"]
    assert changes_from_json(recorded) == (SpendingShift(20, amount=2.0), UnderThresholdFrauds(20, customers=5))
    bad = runner.invoke(app, [*world, "--out", str(tmp_path / "b"), "--change", "spending:20:share=2"])
    assert bad.exit_code != 0
    assert "change 'spending:20:share=2': share must be a number in (0, 1], got 2.0" in bad.output
    assert "Traceback" not in bad.output and not (tmp_path / "b" / "world").exists()
    file.write_text("[{")
    bad = runner.invoke(app, [*world, "--out", str(tmp_path / "b"), "--changes", str(file)])
    assert bad.exit_code != 0 and f"--changes {file}: not JSON" in bad.output
