"""Benchmark: a lake operated day after day (``fraudflow operate``), read back from what it recorded.

    fraudflow pipeline --out /tmp/ops [--customers ... --terminals ... --start-date ... --days ...]
    time fraudflow operate --data /tmp/ops --days 60
    .venv/bin/python -m benchmarks.operate --data /tmp/ops

Prints Markdown: wall time per simulated day (from ``operate/days/<date>.json``: the whole day, world
to gate), the gate's decisions, and the live metrics of each mature week of the prediction log
(``jobs.monitor``: 7-day blocks from the first operated day, labels as the labels table knows them).
"""

from __future__ import annotations

import argparse
import statistics

from benchmarks._measure import machine


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--data", required=True)
    args = parser.parse_args()

    from fraudflow.jobs.monitor import monitor
    from fraudflow.jobs.operate import day_reports
    from fraudflow.lake import Lake
    from fraudflow.training import registry

    lake = Lake(args.data)
    days = day_reports(lake)
    print(f"machine: {machine()}\n")
    seconds = [d.seconds for d in days]
    gated = [d.seconds for d in days if d.gate is not None]
    plain = [d.seconds for d in days if d.gate is None]
    tx = [d.transactions for d in days]
    print(
        f"{len(days)} days {days[0].day} .. {days[-1].day}, {sum(tx):,} transactions ({min(tx):,} .. {max(tx):,} a day)"
    )
    print()
    print("| seconds per simulated day | mean | median | max | total |")
    print("|---|---|---|---|---|")
    for name, values in (("every day", seconds), ("days without a gate", plain), ("days with a gate", gated)):
        if values:
            print(
                f"| {name} ({len(values)}) | {statistics.mean(values):.1f} | {statistics.median(values):.1f} | "
                f"{max(values):.1f} | {sum(values):.0f} |"
            )
    print("\n| day | challenger | decision | reason |")
    print("|---|---|---|---|")
    for d in days:
        if d.gate is not None:
            verdict = "promoted" if d.gate.promoted else "kept out"
            print(f"| {d.day} | {d.gate.challenger} | {verdict} | {d.gate.reason} |")
    report = monitor(lake)
    served = {d.day: d.model_id for d in report.days}
    print("\n| mature week | transactions | frauds | AUC ROC | AP | CP@100 | bound | model(s) |")
    print("|---|---|---|---|---|---|---|---|")
    for w in report.weeks:
        models = sorted({m for day, m in served.items() if w.first <= day <= w.last})
        print(
            f"| {w.first} .. {w.last} ({w.days} d) | {w.transactions:,} | {w.frauds:,} | {w.auc_roc:.3f} | "
            f"{w.average_precision:.3f} | {w.card_precision:.3f} | {w.card_precision_bound:.3f} | {', '.join(models)} |"
        )
    flagged = sorted({f.check for d in days for f in d.flags})
    print(f"\nproduction: {registry.production(lake)}; flags raised over the run: {', '.join(flagged) or 'none'}")


if __name__ == "__main__":
    main()
