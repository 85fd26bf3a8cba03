"""The model report: one self-contained HTML file (figures embedded as PNG), readable offline."""

from __future__ import annotations

import base64
import datetime as dt
import html
import io
from dataclasses import dataclass
from typing import Any

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from sklearn.metrics import precision_recall_curve, roc_curve

from fraudflow import schema
from fraudflow.features import registry
from fraudflow.lake import Lake
from fraudflow.training import model
from fraudflow.training.datasets import connect, training_set
from fraudflow.training.engine import FitOptions, local_fitter
from fraudflow.training.evaluation import ScoredFold, Summary
from fraudflow.training.protocol import PUBLISHED

SCENARIOS = {0: "genuine", 1: "1: large amount", 2: "2: compromised terminal", 3: "3: compromised card"}
COLORS = {0: "#7f8c8d", 1: "#e67e22", 2: "#c0392b", 3: "#8e44ad"}


@dataclass
class ReportData:
    """What the report shows; built by the evaluation, rendered here."""

    title: str
    model_id: str
    metadata: dict[str, Any]
    ours: dict[str, Summary]  # row name -> its metrics over the test folds
    test_labels: np.ndarray
    test_scores: np.ndarray
    test_scenarios: np.ndarray
    cp_days: list[str]
    cp_per_day: list[float]
    cp_bound_per_day: list[float]
    importance: dict[str, float]
    daily: dict[str, np.ndarray]  # "day" (datetime64[D]), "rows", "scenario_1".."scenario_3"


def _figure(figsize: tuple[float, float]) -> Figure:
    """A figure drawn by Agg in memory: no pyplot, so the caller's backend (a notebook's) is untouched."""
    fig = Figure(figsize=figsize)
    FigureCanvasAgg(fig)
    return fig


def _png(fig: Figure) -> str:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=110, bbox_inches="tight")
    return f'<img alt="" src="data:image/png;base64,{base64.b64encode(buf.getvalue()).decode()}">'


def _curves(d: ReportData) -> str:
    fig = _figure((10, 4))
    a, b = fig.subplots(1, 2)
    fpr, tpr, _ = roc_curve(d.test_labels, d.test_scores)
    a.plot(fpr, tpr, color="#2c3e50")
    a.plot([0, 1], [0, 1], ls=":", color="grey")
    a.set(title="ROC curve (test folds)", xlabel="false positive rate", ylabel="true positive rate")
    prec, rec, _ = precision_recall_curve(d.test_labels, d.test_scores)
    b.plot(rec, prec, color="#2c3e50")
    b.axhline(d.test_labels.mean(), ls=":", color="grey", label="fraud rate")
    b.set(title="Precision-recall curve (test folds)", xlabel="recall", ylabel="precision")
    b.legend()
    return _png(fig)


def _card_precision(d: ReportData) -> str:
    fig = _figure((10, 3.5))
    ax = fig.subplots()
    x = np.arange(len(d.cp_days))
    ax.bar(x, d.cp_bound_per_day, color="#d5dbdb", label="perfect ranking (bound)")
    ax.bar(x, d.cp_per_day, color="#2980b9", width=0.6, label="model")
    ax.set_xticks(x, d.cp_days, rotation=60, fontsize=7)
    ax.set(title="Card Precision@100 per test day", ylabel="CP@100")
    ax.legend()
    return _png(fig)


def _scores(d: ReportData) -> str:
    fig = _figure((10, 3.5))
    ax = fig.subplots()
    bins = np.linspace(0, 1, 41).tolist()
    for scen, name in SCENARIOS.items():
        v = d.test_scores[d.test_scenarios == scen]
        if len(v):
            ax.hist(v, bins=bins, density=True, histtype="step", lw=2, color=COLORS[scen], label=f"{name} ({len(v):,})")
    ax.set_yscale("log")
    ax.set(title="Score distribution by scenario (test folds)", xlabel="fraud probability", ylabel="density (log)")
    ax.legend(fontsize=8)
    return _png(fig)


def _importance(d: ReportData) -> str:
    items = sorted(d.importance.items(), key=lambda kv: kv[1])
    fig = _figure((8, 0.3 * len(items) + 1))
    ax = fig.subplots()
    ax.barh([k for k, _ in items], [v for _, v in items], color="#16a085")
    ax.set(title="Feature importance (XGBoost gain)", xlabel="total gain")
    ax.tick_params(axis="y", labelsize=8)
    return _png(fig)


def _daily(d: ReportData) -> str:
    fig = _figure((10, 5))
    a, b = fig.subplots(2, 1, sharex=True)
    days = d.daily["day"]
    a.plot(days, d.daily["rows"], color="#2c3e50")
    a.set(title="Transactions per day", ylabel="transactions")
    bottom = np.zeros(len(days))
    for scen in (1, 2, 3):
        v = d.daily[f"scenario_{scen}"]
        b.bar(days, v, bottom=bottom, color=COLORS[scen], label=SCENARIOS[scen], width=1.0)
        bottom += v
    b.set(title="Frauds per day by scenario", ylabel="frauds")
    b.legend(fontsize=8)
    return _png(fig)


def _metrics_table(d: ReportData) -> str:
    rows = []
    for name, summary in d.ours.items():
        cells = "".join(f"<td>{e.mean:.3f} ± {e.std:.3f}</td>" for e in summary.headline())
        rows.append(f"<tr class='ours'><th>{html.escape(name)}</th>{cells}</tr>")
    for name, values in PUBLISHED.items():
        cells = "".join(f"<td>{v:.3f}</td>" for v in values)
        rows.append(f"<tr><th>Handbook: {html.escape(name)}</th>{cells}</tr>")
    return (
        "<table><tr><th>model (test folds, prequential mean ± sd)</th><th>AUC ROC</th>"
        "<th>Average precision</th><th>CP@100</th></tr>" + "".join(rows) + "</table>"
    )


def render(d: ReportData) -> str:
    meta = d.metadata
    total = int(np.sum(d.daily["rows"]))
    frauds = {scenario: int(np.sum(d.daily[f"scenario_{scenario}"])) for scenario in (1, 2, 3)}
    facts = {
        "model": d.model_id,
        "feature set": f"{len(meta.get('features', []))} features, version {meta.get('feature_set_version')}",
        "training window": f"{meta.get('train_start')} .. {meta.get('train_end')}",
        "parameters": ", ".join(f"{k}={v}" for k, v in sorted(meta.get("params", {}).items())),
        "data": f"{total:,} transactions, frauds by scenario {frauds}",
        "CP@100 bound (perfect ranking)": f"{np.mean(d.cp_bound_per_day):.3f}",
    }
    facts_html = "".join(f"<tr><th>{html.escape(k)}</th><td>{html.escape(str(v))}</td></tr>" for k, v in facts.items())
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>{html.escape(d.title)}</title>
<style>
body {{ font-family: -apple-system, Segoe UI, Helvetica, Arial, sans-serif; max-width: 1080px; margin: 2em auto;
       color: #2c3e50; padding: 0 1em; }}
table {{ border-collapse: collapse; margin: 1em 0; }}
th, td {{ border-bottom: 1px solid #ddd; padding: 4px 10px; text-align: left; }}
tr.ours th, tr.ours td {{ font-weight: bold; background: #eaf2f8; }}
img {{ max-width: 100%; }}
h2 {{ border-bottom: 2px solid #2980b9; padding-bottom: 4px; }}
</style></head><body>
<h1>{html.escape(d.title)}</h1>
<table>{facts_html}</table>
<h2>Results against the handbook</h2>{_metrics_table(d)}
<h2>Card Precision@100 per test day</h2>{_card_precision(d)}
<h2>Curves</h2>{_curves(d)}
<h2>Scores of frauds and genuine transactions</h2>{_scores(d)}
<h2>Feature importance</h2>{_importance(d)}
<h2>Data</h2>{_daily(d)}
</body></html>
"""


def write(
    lake: Lake, model_id: str, folds: list[ScoredFold] | None = None, title: str = "fraudflow model report"
) -> str:
    """Render ``models/<id>/report.html`` from the model, its metrics and the lake; return its path.

    ``folds`` are the test folds' scores when the caller has them; otherwise each fold's model is
    fitted again from the saved parameters (fits are deterministic).
    """
    meta = lake.read_json(lake.path("models", model_id, model.METADATA_FILE))
    saved_metrics = lake.read_json(lake.path("models", model_id, model.METRICS_FILE))
    feature_set = registry.required(lake)
    saved = model.load(lake, model_id, expect_version=feature_set.version)
    if folds is None:
        folds = _refit_folds(lake, saved, meta)
    labels: list[np.ndarray] = []
    scores: list[np.ndarray] = []
    scen: list[np.ndarray] = []
    days: list[str] = []
    cp: list[float] = []
    bound: list[float] = []
    for fold in sorted(folds, key=lambda f: f.start):
        labels.append(fold.test[schema.TX_FRAUD].to_numpy())
        scores.append(fold.scores)
        scen.append(fold.test[schema.TX_FRAUD_SCENARIO].to_numpy())
        perf = fold.performance()
        days += [str(x) for x in np.unique(fold.test[schema.PARTITION_COLUMN].to_numpy())]
        cp += perf.card_precision_per_day
        bound += perf.card_precision_bound_per_day
    data = ReportData(
        title=title,
        model_id=model_id,
        metadata=meta,
        ours={f"fraudflow XGBoost ({len(meta['test_starts'])} test folds)": Summary.from_json(saved_metrics)},
        test_labels=np.concatenate(labels),
        test_scores=np.concatenate(scores),
        test_scenarios=np.concatenate(scen),
        cp_days=days,
        cp_per_day=cp,
        cp_bound_per_day=bound,
        importance={k: float(v) for k, v in saved.booster.get_score(importance_type="total_gain").items()},  # type: ignore[arg-type]
        daily=daily_summary(lake),
    )
    path = lake.path("models", model_id, "report.html")
    with lake.fs.open(path, "w") as f:
        f.write(render(data))
    return path


def _refit_folds(lake: Lake, saved: model.Model, meta: dict[str, Any]) -> list[ScoredFold]:
    """The saved model's test folds scored again: its own fold by it, the others by models fitted anew."""
    options = FitOptions(lake, registry.required(lake), saved.features, meta["params"], meta.get("seed", 0))
    fit_split = local_fitter(options)
    folds = []
    for start in sorted(dt.date.fromisoformat(d) for d in meta["test_starts"]):
        if start.isoformat() == meta["train_start"]:
            fitted, test = saved, training_set(lake, start, kind="test")
        else:
            fitted, test = fit_split(start)
        folds.append(ScoredFold(start, test, fitted.predict(test)))
    return folds


def daily_summary(lake: Lake) -> dict[str, np.ndarray]:
    """Transactions and frauds by scenario, per day of the lake."""
    rows = (
        connect(lake)
        .execute(
            "SELECT tx_date, count(*), count(*) FILTER (TX_FRAUD_SCENARIO = 1),"
            " count(*) FILTER (TX_FRAUD_SCENARIO = 2), count(*) FILTER (TX_FRAUD_SCENARIO = 3)"
            " FROM transactions GROUP BY tx_date ORDER BY tx_date"
        )
        .fetchall()
    )
    cols: list[Any] = list(zip(*rows, strict=True)) if rows else [[], [], [], [], []]
    return {
        "day": np.array(cols[0], dtype="datetime64[D]"),
        "rows": np.array(cols[1]),
        "scenario_1": np.array(cols[2]),
        "scenario_2": np.array(cols[3]),
        "scenario_3": np.array(cols[4]),
    }
