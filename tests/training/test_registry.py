"""The model registry: aliases, the gate, rollback and the decision log in the lake; the alert budget.

One small world (600 customers, 45 days) and three real models trained on its newest mature split:
a good one (fraudflow's parameters), a weak one (one stump: worse on AP and CP@100 on every week
here) and a middling one. Each test starts from an empty registry over the same models.
"""

from __future__ import annotations

import datetime as dt
import json
import shutil
from collections import defaultdict
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner, Result

from fraudflow import Lake, WorldParams, generate
from fraudflow.cli import app
from fraudflow.features import FRAUDFLOW, build_features
from fraudflow.store import offline
from fraudflow.training import budget, model, registry, workflow
from fraudflow.training.evaluation import load_split
from fraudflow.training.protocol import newest_mature_start, split_days
from fraudflow.training.registry import AP, CP, Margins, RegistryError

WORLD = WorldParams(n_customers=600, n_terminals=800, nb_days=45, radius=8.0, start_date=dt.date(2018, 4, 1))
LAST_DAY = dt.date(2018, 5, 15)
WEEK = split_days(newest_mature_start(LAST_DAY), "test")
runner = CliRunner()


class Models:
    def __init__(self, lake: Lake, good: str, weak: str, middling: str) -> None:
        self.lake, self.good, self.weak, self.middling = lake, good, weak, middling


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> Models:
    root = tmp_path_factory.mktemp("registry") / "lake"
    generate(root, WORLD)
    build_features(root, FRAUDFLOW)
    lake = Lake(root)
    good = workflow.train(lake).model_id
    weak = workflow.train(lake, params={"n_estimators": 1, "max_depth": 1}).model_id
    middling = workflow.train(lake, params={"n_estimators": 10, "max_depth": 2}).model_id
    return Models(lake, good, weak, middling)


@pytest.fixture
def models(trained: Models) -> Models:
    """The trained models, with an empty registry."""
    shutil.rmtree(trained.lake.path("models", registry.FOLDER), ignore_errors=True)
    return trained


def test_aliases_round_trip_through_the_lake(models: Models) -> None:
    lake = models.lake
    assert registry.aliases(lake) == {} and registry.production(lake) is None
    assert registry.model_to_serve(lake) == model.latest_model(lake)  # today's rule: the newest
    registry.promote(lake, models.good)
    registry.promote(lake, models.weak, alias="candidate")
    again = Lake(lake.url)  # read back by a new reader
    assert registry.aliases(again) == {"production": models.good, "candidate": models.weak}
    assert registry.model_to_serve(again) == models.good  # the alias, not the newest model
    listed = {e.model_id: e for e in registry.entries(again)}
    assert listed[models.good].aliases == ["production"] and listed[models.weak].aliases == ["candidate"]
    assert listed[models.middling].aliases == []
    # the candidate promoted to production is a candidate no more
    registry.promote(lake, models.weak)
    assert registry.aliases(lake) == {"production": models.weak}
    with pytest.raises(RegistryError, match="already production"):
        registry.promote(lake, models.weak)


def test_an_unfinished_model_is_never_listed_aliased_promoted_or_served(models: Models) -> None:
    lake = models.lake
    unfinished = "29990101T000000-abcdef"  # sorts after every finished model
    model.save(model.load(lake, models.good), lake, unfinished)  # no metrics.json: it did not finish
    try:
        assert unfinished not in [e.model_id for e in registry.entries(lake)]
        assert registry.model_to_serve(lake) == model.list_models(lake)[-1] != unfinished
        for attempt in (
            lambda: registry.promote(lake, unfinished),
            lambda: registry.promote(lake, unfinished, alias="candidate"),
            lambda: registry.gate(lake, unfinished),
        ):
            with pytest.raises(RegistryError, match=f"model {unfinished} did not finish"):
                attempt()
        with pytest.raises(RegistryError, match="no model 'nope'"):
            registry.promote(lake, "nope")
        with pytest.raises(RegistryError, match="no model '_registry'"):
            registry.promote(lake, registry.FOLDER)
        assert registry.decisions(lake) == []
    finally:
        shutil.rmtree(lake.path("models", unfinished))


def test_the_gate_promotes_only_when_the_margins_are_beaten(models: Models) -> None:
    lake = models.lake
    first = registry.gate(lake, models.good)  # no champion: the first model becomes production
    assert first.changed and first.reason == "no production model yet" and registry.production(lake) == models.good
    kept_out = registry.gate(lake, models.weak)
    assert not kept_out.changed and kept_out.from_model == models.good and kept_out.to_model == models.weak
    assert registry.aliases(lake) == {"production": models.good, "candidate": models.weak}
    assert kept_out.week == [d.isoformat() for d in WEEK]
    champion, challenger = kept_out.metrics["champion"], kept_out.metrics["challenger"]
    # the gate's figures are the models' own on that week (their split tests on it)
    stored = lake.read_json(lake.path("models", models.good, model.METRICS_FILE))
    assert champion[AP] == pytest.approx(stored[AP]) and champion[CP] == pytest.approx(stored[CP])
    assert challenger[AP] < champion[AP] and challenger[CP] < champion[CP]
    assert kept_out.reason.startswith("short of the margins on average_precision -")

    # the weak model in production by hand; the good one must beat it by the margins
    registry.promote(lake, models.weak)
    gain_ap, gain_cp = champion[AP] - challenger[AP], champion[CP] - challenger[CP]
    too_much = registry.gate(lake, models.good, Margins(average_precision=gain_ap + 0.01))
    assert not too_much.changed and registry.production(lake) == models.weak
    assert too_much.margins == {AP: gain_ap + 0.01, CP: 0.0} and "short of the margins on average_precision" in (
        too_much.reason
    )
    cp_short = registry.gate(lake, models.good, Margins(average_precision=0.0, card_precision=gain_cp + 0.01))
    assert not cp_short.changed and cp_short.reason.startswith("short of the margins on card_precision_at_100")
    passed = registry.gate(lake, models.good, Margins(gain_ap - 1e-6, gain_cp - 1e-6))
    assert passed.changed and passed.reason.startswith("beats the champion by the margins")
    assert registry.aliases(lake) == {"production": models.good}  # the candidate it was went to production
    with pytest.raises(RegistryError, match="already production"):
        registry.gate(lake, models.good)


def test_rollback_goes_back_through_earlier_production_models(models: Models) -> None:
    lake = models.lake
    with pytest.raises(RegistryError, match="nothing to roll back to: no production model"):
        registry.rollback(lake)
    registry.promote(lake, models.good)
    with pytest.raises(RegistryError, match=f"production \\({models.good}\\) is the first one"):
        registry.rollback(lake)
    registry.promote(lake, models.weak)
    registry.promote(lake, models.middling)
    back = registry.rollback(lake)
    assert (back.from_model, back.to_model) == (models.middling, models.weak)
    assert registry.production(lake) == models.weak
    registry.rollback(lake)
    assert registry.production(lake) == models.good
    with pytest.raises(RegistryError, match="nothing to roll back to"):
        registry.rollback(lake)


def test_every_decision_is_logged_with_what_it_was_based_on(models: Models) -> None:
    lake = models.lake
    registry.gate(lake, models.good)
    registry.gate(lake, models.weak, Margins(0.01, 0.02))
    registry.promote(lake, models.middling, reason="a person's call")
    registry.rollback(lake)
    log = registry.decisions(Lake(lake.url))
    assert [(d.seq, d.action, d.from_model, d.to_model, d.changed) for d in log] == [
        (1, "gate", None, models.good, True),
        (2, "gate", models.good, models.weak, False),
        (3, "promote", models.good, models.middling, True),
        (4, "rollback", models.middling, models.good, True),
    ]
    times = [dt.datetime.fromisoformat(d.time.replace("Z", "+00:00")) for d in log]
    assert times == sorted(times) and all(t.tzinfo is not None for t in times)
    gate = log[1]
    assert gate.margins == {AP: 0.01, CP: 0.02} and gate.week == [d.isoformat() for d in WEEK]
    assert {gate.metrics[r]["model_id"] for r in ("champion", "challenger")} == {models.good, models.weak}
    assert {"auc_roc", AP, CP} <= set(gate.metrics["challenger"])
    promoted = log[2]
    assert promoted.reason == "a person's call" and set(promoted.metrics) == {"from", "to"}
    assert promoted.metrics["to"][AP] == lake.read_json(lake.path("models", models.middling, "metrics.json"))[AP]
    assert log[3].aliases == {"production": models.good, "candidate": models.weak} and log[3].previous == []
    # one JSON file per decision, never rewritten
    files = sorted(Path(lake.path("models", registry.FOLDER, registry.DECISIONS)).iterdir())
    assert [json.loads(f.read_text())["seq"] for f in files] == [1, 2, 3, 4]


def test_the_threshold_is_chosen_for_the_budget_and_stored_with_the_model(models: Models) -> None:
    lake = models.lake
    meta = lake.read_json(lake.path("models", models.good, model.METADATA_FILE))
    stored = meta[budget.METADATA_KEY]
    threshold = registry.alert_threshold(lake, models.good)
    assert threshold is not None and threshold == stored["threshold"]
    assert stored["cards_per_day"] == budget.CARDS_PER_DAY == 100
    assert (stored["first_day"], stored["last_day"]) == tuple(d.isoformat() for d in WEEK)
    # counted here, independently: cards with a transaction scored at or over it, each day of that
    # week, over every transaction of it (the service scores them all: cards with known frauds too)
    days = [WEEK[0] + dt.timedelta(d) for d in range((WEEK[1] - WEEK[0]).days + 1)]
    rows = offline.read_rows(lake, WEEK[0], WEEK[1])
    assert rows is not None
    txs = lake.read_partitions("transactions", days)
    card_of = dict(zip(txs["TRANSACTION_ID"].to_pylist(), txs["CUSTOMER_ID"].to_pylist(), strict=True))
    scores = model.load(lake, models.good).predict(rows)
    cards: dict[object, set[int]] = defaultdict(set)
    ids, times = rows["TRANSACTION_ID"].to_pylist(), rows["TX_DATETIME"].to_pylist()
    for tx_id, when, score in zip(ids, times, scores, strict=True):
        if score >= threshold:
            cards[when.date()].add(card_of[tx_id])
    per_day = [len(cards[d]) for d in days]
    assert len(per_day) == 7 and 95 <= np.mean(per_day) <= 100
    assert np.mean(per_day) == pytest.approx(stored["alerted_cards_per_day"])
    test = load_split(lake, newest_mature_start(LAST_DAY)).test
    scores = model.load(lake, models.good).predict(test)
    # another budget, another threshold
    smaller = budget.choose(test, scores, 20)
    assert smaller.threshold > threshold and 18 <= smaller.alerted_cards_per_day <= 20
    # a model saved before budgets has none: the service keeps its own
    del meta[budget.METADATA_KEY]
    old = "20000101T000000-000000"
    shutil.copytree(lake.path("models", models.good), lake.path("models", old))
    try:
        lake.write_json(lake.path("models", old, model.METADATA_FILE), meta)
        assert registry.alert_threshold(lake, old) is None
        assert {e.model_id: e.threshold for e in registry.entries(lake)}[old] is None
    finally:
        shutil.rmtree(lake.path("models", old))


def test_the_registry_works_on_s3(models: Models, s3_root: str) -> None:
    s3 = Lake(s3_root)
    for model_id in (models.good, models.weak):
        s3.fs.put(models.lake.path("models", model_id), s3.path("models", model_id), recursive=True)
    assert [e.model_id for e in registry.entries(s3)] == sorted([models.good, models.weak])
    registry.promote(s3, models.good)
    registry.promote(s3, models.weak)
    registry.rollback(s3)
    again = Lake(s3_root)
    assert registry.aliases(again) == {"production": models.good}
    assert [d.action for d in registry.decisions(again)] == ["promote", "promote", "rollback"]
    assert registry.alert_threshold(again, models.good) == registry.alert_threshold(models.lake, models.good)


def run(*args: str) -> Result:
    return runner.invoke(app, list(args))


def test_the_models_commands(models: Models) -> None:
    data = ["--data", models.lake.url]
    listed = run("models", "list", *data, "--json")
    assert listed.exit_code == 0, listed.output
    rows = json.loads(listed.stdout)
    assert [r["model_id"] for r in rows] == model.list_models(models.lake)
    assert {r["model_id"] for r in rows} == {models.good, models.weak, models.middling}
    (good,) = (r for r in rows if r["model_id"] == models.good)
    assert good["aliases"] == [] and good["threshold"] == registry.alert_threshold(models.lake, models.good)
    assert set(good["metrics"]) == {"auc_roc", AP, CP} and good["created"].endswith("Z")

    gated = run("models", "gate", models.good, *data)
    assert gated.exit_code == 0 and f"{models.good} promoted to production: no production model yet" in gated.stdout
    gated = run("models", "gate", models.weak, *data, "--margin-ap", "-1", "--margin-cp", "0.5", "--json")
    assert gated.exit_code == 0, gated.output
    decision = json.loads(gated.stdout)
    assert decision["changed"] is False and decision["margins"] == {AP: -1.0, CP: 0.5}
    assert decision["reason"].startswith("short of the margins on card_precision_at_100")
    promoted = run("models", "promote", models.middling, *data)
    assert promoted.exit_code == 0 and f"production: {models.good} -> {models.middling}" in promoted.stdout
    table = run("models", "list", *data)
    assert table.exit_code == 0 and "production" in table.stdout and "candidate" in table.stdout
    back = run("models", "rollback", *data, "--reason", "alerts doubled")
    assert back.exit_code == 0 and f"production: {models.middling} -> {models.good}" in back.stdout
    assert registry.decisions(models.lake)[-1].reason == "alerts doubled"
    assert registry.aliases(models.lake) == {"production": models.good, "candidate": models.weak}


def test_the_models_commands_refuse_in_one_line(models: Models) -> None:
    data = ["--data", models.lake.url]
    for args, message in (
        (("models", "rollback", *data), "error: nothing to roll back to: no production model"),
        (("models", "promote", "nope", *data), "error: " + models.lake.url + ": no model 'nope'"),
        (("models", "gate", "nope", *data), "no model 'nope'"),
        (("models", "promote", models.good, *data, "--alias", "staging"), "error: unknown alias 'staging'"),
    ):
        result = run(*args)
        assert result.exit_code == 2 and "Traceback" not in result.output, result.output
        (line,) = result.output.strip().splitlines()
        assert message in line
    assert registry.decisions(models.lake) == []
