"""The plain way: spec/SIMULATOR.md transcribed with Python loops and pandas, no compilation.

This is the baseline the benchmarks compare against (the handbook's own generator is GPL and no
longer runs on current pandas; its measured times are quoted in docs/BENCHMARKS.md). It is
written from the spec, straightforwardly, the way a data scientist would in a notebook.
"""

from __future__ import annotations

import random

import numpy as np
import pandas as pd


def plain_generate(
    n_customers: int = 5000,
    n_terminals: int = 10000,
    nb_days: int = 183,
    start_date: str = "2018-04-01",
    radius: float = 5.0,
) -> pd.DataFrame:
    rs = np.random.RandomState(0)
    cust = []
    for _ in range(n_customers):
        cust.append((rs.uniform(0, 100), rs.uniform(0, 100), rs.uniform(5, 100), rs.uniform(0, 4)))
    rs = np.random.RandomState(1)
    term = np.array([(rs.uniform(0, 100), rs.uniform(0, 100)) for _ in range(n_terminals)])
    rows = []
    for cid, (x, y, mean_amount, mean_nb) in enumerate(cust):
        available = np.flatnonzero(np.sqrt(np.sum((term - np.array([x, y])) ** 2, axis=1)) < radius).tolist()
        n_rng = np.random.RandomState(cid)
        p_rng = random.Random(cid)
        for day in range(nb_days):
            for _ in range(n_rng.poisson(mean_nb)):
                t = int(n_rng.normal(86400 / 2, 20000))
                if 0 < t < 86400:
                    amount = n_rng.normal(mean_amount, mean_amount / 2)
                    if amount < 0:
                        amount = n_rng.uniform(0, mean_amount * 2)
                    amount = np.round(amount, decimals=2)
                    if available:
                        rows.append((t + day * 86400, day, cid, p_rng.choice(available), amount))
    df = pd.DataFrame(rows, columns=["TX_TIME_SECONDS", "TX_TIME_DAYS", "CUSTOMER_ID", "TERMINAL_ID", "TX_AMOUNT"])
    df = df.sort_values(["TX_TIME_SECONDS", "CUSTOMER_ID"], kind="stable").reset_index(drop=True)
    df.insert(0, "TX_DATETIME", pd.to_datetime(df.TX_TIME_SECONDS, unit="s", origin=start_date))
    df.insert(0, "TRANSACTION_ID", range(len(df)))
    return plain_frauds(df, n_customers, n_terminals)


def plain_frauds(df: pd.DataFrame, n_customers: int, n_terminals: int) -> pd.DataFrame:
    df["TX_FRAUD"] = 0
    df["TX_FRAUD_SCENARIO"] = 0
    large = df.TX_AMOUNT > 220
    df.loc[large, ["TX_FRAUD", "TX_FRAUD_SCENARIO"]] = [1, 1]
    for day in range(df.TX_TIME_DAYS.max()):
        compromised = np.random.RandomState(day).permutation(n_terminals)[:2]
        hit = df.TERMINAL_ID.isin(compromised) & (df.TX_TIME_DAYS >= day) & (df.TX_TIME_DAYS < day + 28)
        df.loc[hit, ["TX_FRAUD", "TX_FRAUD_SCENARIO"]] = [1, 2]
    for day in range(df.TX_TIME_DAYS.max()):
        compromised = np.random.RandomState(day).permutation(n_customers)[:3]
        candidates = df[df.CUSTOMER_ID.isin(compromised) & (df.TX_TIME_DAYS >= day) & (df.TX_TIME_DAYS < day + 14)]
        chosen = random.Random(day).sample(list(candidates.index), k=len(candidates) // 3)
        df.loc[chosen, "TX_AMOUNT"] = df.loc[chosen, "TX_AMOUNT"] * 5
        df.loc[chosen, ["TX_FRAUD", "TX_FRAUD_SCENARIO"]] = [1, 3]
    return df
