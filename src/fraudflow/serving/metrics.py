"""Service metrics in the Prometheus text format: requests, latency, scores, alerts."""

from __future__ import annotations

import threading
from collections import defaultdict

LATENCY_BUCKETS = (0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.25, 0.5, 1.0)
SCORE_BUCKETS = (0.01, 0.05, 0.1, 0.25, 0.5, 0.75, 0.9, 0.99)


class Histogram:
    def __init__(self, buckets: tuple[float, ...]) -> None:
        self.buckets = buckets
        self.counts = [0] * len(buckets)
        self.total = 0
        self.sum = 0.0

    def observe(self, value: float) -> None:
        for i, b in enumerate(self.buckets):
            if value <= b:
                self.counts[i] += 1
        self.total += 1
        self.sum += value

    def lines(self, name: str, labels: str = "") -> list[str]:
        sep = "," if labels else ""
        out = [f'{name}_bucket{{{labels}{sep}le="{b}"}} {c}' for b, c in zip(self.buckets, self.counts, strict=True)]
        out += [
            f'{name}_bucket{{{labels}{sep}le="+Inf"}} {self.total}',
            f"{name}_sum{{{labels}}} {self.sum}",
            f"{name}_count{{{labels}}} {self.total}",
        ]
        return out


class Metrics:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.requests: dict[tuple[str, int], int] = defaultdict(int)
        self.latency: dict[str, Histogram] = {}
        self.scores = Histogram(SCORE_BUCKETS)
        self.alerts = 0
        self.scored = 0
        self.duplicates = 0
        self.labels = 0

    def request(self, route: str, status: int, seconds: float) -> None:
        with self._lock:
            self.requests[(route, status)] += 1
            self.latency.setdefault(route, Histogram(LATENCY_BUCKETS)).observe(seconds)

    def score(self, score: float, alert: bool, duplicate: bool) -> None:
        with self._lock:
            if duplicate:
                self.duplicates += 1
                return
            self.scored += 1
            self.alerts += int(alert)
            self.scores.observe(score)

    def render(self) -> str:
        with self._lock:
            lines = ["# TYPE fraudflow_requests_total counter"]
            lines += [
                f'fraudflow_requests_total{{route="{r}",status="{s}"}} {n}'
                for (r, s), n in sorted(self.requests.items())
            ]
            lines.append("# TYPE fraudflow_request_seconds histogram")
            for route, h in sorted(self.latency.items()):
                lines += h.lines("fraudflow_request_seconds", f'route="{route}"')
            lines += [
                "# TYPE fraudflow_transactions_scored_total counter",
                f"fraudflow_transactions_scored_total {self.scored}",
                "# TYPE fraudflow_duplicates_total counter",
                f"fraudflow_duplicates_total {self.duplicates}",
                "# TYPE fraudflow_alerts_total counter",
                f"fraudflow_alerts_total {self.alerts}",
                "# TYPE fraudflow_labels_total counter",
                f"fraudflow_labels_total {self.labels}",
                "# TYPE fraudflow_score histogram",
            ]
            lines += self.scores.lines("fraudflow_score")
            return "\n".join(lines) + "\n"
