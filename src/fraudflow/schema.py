"""Column names and types of the lake's tables: the one source for SQL, frames and the API."""

from __future__ import annotations

from typing import Any

import numpy as np
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

#: The transaction columns the features are computed from: what the feature engines and the
#: online store read, and what an ingested file must have.
INPUT_COLUMNS = (TRANSACTION_ID, TX_DATETIME, CUSTOMER_ID, TERMINAL_ID, TX_AMOUNT, TX_FRAUD)

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


# Arrow <-> NumPy for the fixed-width columns of the lake, without ``pa.array``/``to_numpy``:
# those ask pyarrow's pandas shim whether pandas is around, which imports pandas (about half a
# second of a new process that never uses it). Same arrays, same zero-copy behaviour.

#: Arrow types and the NumPy dtypes they share their memory layout with.
_NUMPY_TYPES: dict[pa.DataType, np.dtype[Any]] = {
    pa.int64(): np.dtype(np.int64),
    pa.int32(): np.dtype(np.int32),
    pa.float64(): np.dtype(np.float64),
    pa.timestamp("ns"): np.dtype("datetime64[ns]"),
    pa.timestamp("us"): np.dtype("datetime64[us]"),
}
_ARROW_TYPES: dict[np.dtype[Any], pa.DataType] = {dtype: type for type, dtype in _NUMPY_TYPES.items()}


def arrow_array(values: np.ndarray, type: pa.DataType | None = None) -> pa.Array:
    """``pa.array(values, type)`` for a NumPy column without nulls (``type`` from its dtype
    when omitted), sharing its memory; ``values`` must already have the dtype of ``type``."""
    type = _ARROW_TYPES.get(values.dtype) if type is None else type
    if type is None or _NUMPY_TYPES.get(type) != values.dtype:
        raise TypeError(f"arrow_array: a {values.dtype} column cannot be stored as {type} without a cast")
    values = np.ascontiguousarray(values)
    return pa.Array.from_buffers(type, len(values), [None, pa.py_buffer(values)])


def numpy_column(column: pa.Array | pa.ChunkedArray) -> np.ndarray:
    """``column.to_numpy()``: for the types above without nulls, a read-only view of a single
    chunk or a concatenated copy of several; anything else is left to ``to_numpy()``."""
    dtype = _NUMPY_TYPES.get(column.type)
    if dtype is None or column.null_count:
        return np.asarray(column.to_numpy())
    chunks = column.chunks if isinstance(column, pa.ChunkedArray) else [column]
    parts = []
    for chunk in chunks:
        if len(chunk):
            data = chunk.buffers()[1]
            parts.append(np.frombuffer(data, dtype=dtype, count=len(chunk), offset=chunk.offset * dtype.itemsize))
    if len(parts) == 1:
        return parts[0]
    return np.concatenate(parts) if parts else np.empty(0, dtype=dtype)


def arrow_table(columns: list[np.ndarray], schema: pa.Schema) -> pa.Table:
    """NumPy columns as a table of ``schema`` (``pa.Table.from_arrays`` without pandas)."""
    return pa.Table.from_arrays([arrow_array(c, f.type) for c, f in zip(columns, schema, strict=True)], schema=schema)


def timestamps_us(column: pa.Array | pa.ChunkedArray) -> np.ndarray:
    """Microseconds since the epoch (int64) of a naive timestamp column, as the features count time."""
    return numpy_column(column).astype("datetime64[us]").view(np.int64)


def time_ordered(table: pa.Table) -> pa.Table:
    """``table``'s rows in (TX_DATETIME, TRANSACTION_ID) order, the order the features are defined
    in (spec/FEATURES.md) and every partition is stored in; ``table`` itself when already so."""
    ts = numpy_column(table[TX_DATETIME])
    ids = numpy_column(table[TRANSACTION_ID])
    if len(ts) < 2 or bool(np.all((ts[1:] > ts[:-1]) | (ts[1:] == ts[:-1]) & (ids[1:] > ids[:-1]))):
        return table
    import pyarrow.compute as pc  # rarely needed; its import builds ~300 functions (40 ms)

    return table.take(pc.sort_indices(table, [(TX_DATETIME, "ascending"), (TRANSACTION_ID, "ascending")]))
