"""Column names and types of the lake's tables: the one source for SQL, frames and the API."""

from __future__ import annotations

import pyarrow as pa

TRANSACTION_ID = "TRANSACTION_ID"
TX_DATETIME = "TX_DATETIME"
CUSTOMER_ID = "CUSTOMER_ID"
TERMINAL_ID = "TERMINAL_ID"
TX_AMOUNT = "TX_AMOUNT"
TX_TIME_SECONDS = "TX_TIME_SECONDS"
TX_TIME_DAYS = "TX_TIME_DAYS"
TX_FRAUD = "TX_FRAUD"
TX_FRAUD_SCENARIO = "TX_FRAUD_SCENARIO"

PARTITION_COLUMN = "tx_date"

#: The raw transactions table, in the handbook's column order and types.
TRANSACTIONS = pa.schema(
    [
        pa.field(TRANSACTION_ID, pa.int64(), nullable=False),
        pa.field(TX_DATETIME, pa.timestamp("ns"), nullable=False),
        pa.field(CUSTOMER_ID, pa.int64(), nullable=False),
        pa.field(TERMINAL_ID, pa.int64(), nullable=False),
        pa.field(TX_AMOUNT, pa.float64(), nullable=False),
        pa.field(TX_TIME_SECONDS, pa.int64(), nullable=False),
        pa.field(TX_TIME_DAYS, pa.int64(), nullable=False),
        pa.field(TX_FRAUD, pa.int64(), nullable=False),
        pa.field(TX_FRAUD_SCENARIO, pa.int64(), nullable=False),
    ]
)

#: Columns that must be non-negative integers.
NON_NEGATIVE_INTS = (
    TRANSACTION_ID,
    CUSTOMER_ID,
    TERMINAL_ID,
    TX_TIME_SECONDS,
    TX_TIME_DAYS,
)

CUSTOMERS = pa.schema(
    [
        ("CUSTOMER_ID", pa.int64()),
        ("x_customer_id", pa.float64()),
        ("y_customer_id", pa.float64()),
        ("mean_amount", pa.float64()),
        ("std_amount", pa.float64()),
        ("mean_nb_tx_per_day", pa.float64()),
        ("nb_terminals", pa.int64()),
    ]
)

TERMINALS = pa.schema(
    [
        ("TERMINAL_ID", pa.int64()),
        ("x_terminal_id", pa.float64()),
        ("y_terminal_id", pa.float64()),
    ]
)
