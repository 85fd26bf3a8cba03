"""The plain way to compute the 15 features: pandas rolling windows per entity, from the spec.

The baseline of benchmarks/features.py: what a data scientist writes in a notebook (time-based
rolling windows over each customer's and terminal's transactions, groupby-apply).
"""

from __future__ import annotations

import pandas as pd


def plain_features(tx: pd.DataFrame) -> pd.DataFrame:
    df = tx.sort_values(["TX_DATETIME", "TRANSACTION_ID"]).reset_index(drop=True)
    out = pd.DataFrame({"TRANSACTION_ID": df.TRANSACTION_ID, "TX_AMOUNT": df.TX_AMOUNT})
    out["TX_DURING_WEEKEND"] = (df.TX_DATETIME.dt.weekday >= 5).astype(int)
    out["TX_DURING_NIGHT"] = (df.TX_DATETIME.dt.hour <= 6).astype(int)

    def customer(group: pd.DataFrame) -> pd.DataFrame:
        g = group.set_index("TX_DATETIME")
        res = {}
        for w in (1, 7, 30):
            roll = g.TX_AMOUNT.rolling(f"{w}D")
            res[f"CUSTOMER_ID_NB_TX_{w}DAY_WINDOW"] = roll.count().to_numpy()
            res[f"CUSTOMER_ID_AVG_AMOUNT_{w}DAY_WINDOW"] = (roll.sum() / roll.count()).to_numpy()
        return pd.DataFrame(res, index=group.index)

    def terminal(group: pd.DataFrame) -> pd.DataFrame:
        g = group.set_index("TX_DATETIME")
        delay_n = g.TX_FRAUD.rolling("7D").count()
        delay_f = g.TX_FRAUD.rolling("7D").sum()
        res = {}
        for w in (1, 7, 30):
            n = g.TX_FRAUD.rolling(f"{w + 7}D").count() - delay_n
            f = g.TX_FRAUD.rolling(f"{w + 7}D").sum() - delay_f
            res[f"TERMINAL_ID_NB_TX_{w}DAY_WINDOW"] = n.to_numpy()
            res[f"TERMINAL_ID_RISK_{w}DAY_WINDOW"] = (f / n).fillna(0).to_numpy()
        return pd.DataFrame(res, index=group.index)

    cust = df.groupby("CUSTOMER_ID", group_keys=False)[["TX_DATETIME", "TX_AMOUNT"]].apply(customer)
    term = df.groupby("TERMINAL_ID", group_keys=False)[["TX_DATETIME", "TX_FRAUD"]].apply(terminal)
    return pd.concat([out, cust.sort_index(), term.sort_index()], axis=1)
