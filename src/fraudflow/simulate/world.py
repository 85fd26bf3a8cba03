"""The simulated world: its parameters, customer and terminal profiles, and who can pay where.

Profiles follow spec/SIMULATOR.md sections 1-3 exactly: one legacy ``RandomState`` per kind,
uniform draws taken in the spec's order, and the terminals of a customer are those strictly
closer than ``radius`` (float64 Euclidean distance), found through a spatial grid.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numba
import numpy as np

import fraudflow._numba  # noqa: F401  (threading layer, before any kernel)
from fraudflow.errors import ConfigError
from fraudflow.simulate.changes import (
    SPENDING_SEED,
    SpendingShift,
    WorldChange,
    change_to_json,
    changes_from_json,
    in_order,
)

if TYPE_CHECKING:
    import numpy.typing as npt

    I32 = npt.NDArray[np.int32]
    I64 = npt.NDArray[np.int64]
    F64 = npt.NDArray[np.float64]

WORLD_FORMAT_VERSION = 1
AREA = 100.0  # profiles live on [0, 100) x [0, 100)


@dataclass(frozen=True)
class WorldParams:
    """Parameters of a world; together with the code they determine every transaction."""

    n_customers: int = 5000
    n_terminals: int = 10000
    nb_days: int = 183
    start_date: dt.date = dt.date(2018, 4, 1)
    radius: float = 5.0
    changes: tuple[WorldChange, ...] = ()  # docs/WORLD_CHANGES.md; none: the handbook's world

    def __post_init__(self) -> None:
        checks = {
            "n_customers": self.n_customers >= 1,
            "n_terminals": self.n_terminals >= 1,
            "nb_days": self.nb_days >= 1,
            "radius": self.radius > 0 and np.isfinite(self.radius),
        }
        for name, ok in checks.items():
            if not ok:
                raise ConfigError(f"{name} must be positive, got {getattr(self, name)!r}")
        if self.n_customers >= 2**31 or self.n_terminals >= 2**31:
            raise ConfigError("n_customers and n_terminals must be below 2**31")
        object.__setattr__(self, "changes", in_order(self.changes))
        for change in self.changes:
            change.check()

    @classmethod
    def from_options(cls, **fields: Any) -> WorldParams:
        """A world with the ``fields`` given; a field given as ``None`` keeps its default above (the handbook's)."""
        return cls(**{name: value for name, value in fields.items() if value is not None})

    def to_json(self) -> dict[str, Any]:
        """The parameters as JSON; ``changes`` only when there are some (a world without is as before)."""
        d = {f.name: getattr(self, f.name) for f in dataclasses.fields(self) if f.name != "changes"}
        d["start_date"] = self.start_date.isoformat()
        if self.changes:
            d["changes"] = [change_to_json(c) for c in self.changes]
        return d

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> WorldParams:
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = set(d) - known
        if unknown:
            raise ConfigError(f"unknown world parameters: {sorted(unknown)}")
        d = dict(d)
        if "start_date" in d:
            d["start_date"] = parse_date(d["start_date"], "start_date")
        if "changes" in d:
            d["changes"] = changes_from_json(d["changes"])
        return cls(**d)


def parse_date(value: Any, what: str) -> dt.date:
    if isinstance(value, dt.date):
        return value
    try:
        return dt.date.fromisoformat(str(value))
    except ValueError as exc:
        raise ConfigError(f"{what}: expected a date YYYY-MM-DD, got {value!r}") from exc


@dataclass(frozen=True)
class Profiles:
    """Customer and terminal profiles as NumPy columns."""

    customer_x: np.ndarray
    customer_y: np.ndarray
    mean_amount: np.ndarray
    std_amount: np.ndarray
    mean_nb_tx_per_day: np.ndarray
    terminal_x: np.ndarray
    terminal_y: np.ndarray


def make_profiles(params: WorldParams) -> Profiles:
    # uniform(low, high) is low + (high - low) * next_double: drawing all doubles at once in the
    # spec's per-customer order and scaling them gives the same floats as drawing one by one.
    u = np.random.RandomState(0).random_sample(4 * params.n_customers).reshape(-1, 4)
    mean_amount = 5.0 + 95.0 * u[:, 2]
    v = np.random.RandomState(1).random_sample(2 * params.n_terminals).reshape(-1, 2)
    return Profiles(
        customer_x=0.0 + 100.0 * u[:, 0],
        customer_y=0.0 + 100.0 * u[:, 1],
        mean_amount=mean_amount,
        std_amount=mean_amount / 2,
        mean_nb_tx_per_day=0.0 + 4.0 * u[:, 3],
        terminal_x=0.0 + 100.0 * v[:, 0],
        terminal_y=0.0 + 100.0 * v[:, 1],
    )


@dataclass(frozen=True)
class Phases:
    """Customers' profiles by phase, as the kernel takes them (``kernel.Customers``' last five fields)."""

    lam: np.ndarray
    mean: np.ndarray
    std: np.ndarray
    phase_ptr: np.ndarray
    phase_day: np.ndarray


def shifted_customers(shift: SpendingShift, n_customers: int) -> np.ndarray:
    """Whether each customer is in ``shift``: the first ``round(share * n)`` of its permutation."""
    chosen = np.zeros(n_customers, dtype=bool)
    if shift.share >= 1:
        chosen[:] = True
    else:
        order = np.random.RandomState(SPENDING_SEED + shift.from_day).permutation(n_customers)
        chosen[order[: round(shift.share * n_customers)]] = True
    return chosen


def customer_phases(
    profiles: Profiles, changes: tuple[WorldChange, ...], ids: np.ndarray, as_of: int | None = None
) -> Phases:
    """Profiles of customers ``ids`` by phase under the spending shifts in force on day ``as_of`` (None: all).

    Without shifts each customer has one phase, its profile. With them every customer has one phase
    per distinct start day (day 0 first); a shift multiplies its customers' values from its phase on.
    """
    shifts = [c for c in changes if isinstance(c, SpendingShift) and (as_of is None or c.from_day <= as_of)]
    n = len(ids)
    lam, mean, std = profiles.mean_nb_tx_per_day[ids], profiles.mean_amount[ids], profiles.std_amount[ids]
    days = sorted({0, *(c.from_day for c in shifts)})
    columns: list[list[np.ndarray]] = [[], [], []]
    for day in days:
        for shift in (c for c in shifts if c.from_day == day):
            hit = shifted_customers(shift, len(profiles.mean_amount))[ids]
            lam, mean, std = lam.copy(), mean.copy(), std.copy()
            lam[hit] *= shift.tx
            mean[hit] *= shift.amount
            std[hit] *= shift.amount
        for column, values in zip(columns, (lam, mean, std), strict=True):
            column.append(values)
    k = len(days)
    lam_p, mean_p, std_p = (np.stack(c, axis=1).ravel() for c in columns)
    return Phases(
        lam_p, mean_p, std_p, np.arange(0, n * k + 1, k, dtype=np.int64), np.tile(np.array(days, np.int64), n)
    )


@dataclass(frozen=True)
class TerminalGrid:
    """Terminals bucketed into square cells of side ``radius`` (CSR layout)."""

    cell: float
    n_cells: int
    starts: np.ndarray  # int64, n_cells*n_cells + 1
    ids: np.ndarray  # int32 terminal ids, ascending within a cell
    x: np.ndarray
    y: np.ndarray


def build_grid(profiles: Profiles, radius: float) -> TerminalGrid:
    n_cells = max(1, int(np.ceil(AREA / radius)))
    cx = np.minimum((profiles.terminal_x / radius).astype(np.int64), n_cells - 1)
    cy = np.minimum((profiles.terminal_y / radius).astype(np.int64), n_cells - 1)
    cell_of = cx * n_cells + cy
    order = np.argsort(cell_of, kind="stable").astype(np.int32)
    counts = np.bincount(cell_of, minlength=n_cells * n_cells)
    starts = np.zeros(n_cells * n_cells + 1, dtype=np.int64)
    np.cumsum(counts, out=starts[1:])
    return TerminalGrid(radius, n_cells, starts, order, profiles.terminal_x, profiles.terminal_y)


def available_terminals(
    profiles: Profiles, grid: TerminalGrid, radius: float, ids: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Terminals available to customers ``ids`` as CSR ``(indptr, terminal_ids)``."""
    cx = profiles.customer_x[ids]
    cy = profiles.customer_y[ids]
    args = (cx, cy, grid.starts, grid.ids, grid.x, grid.y, grid.cell, grid.n_cells, radius)
    counts = _near(*args, _NONE, _NONE.astype(np.int32), False)
    indptr = np.zeros(len(cx) + 1, dtype=np.int64)
    np.cumsum(counts, out=indptr[1:])
    out = np.empty(indptr[-1], dtype=np.int32)
    _near(*args, indptr, out, True)
    return indptr, out


def terminal_counts(profiles: Profiles, grid: TerminalGrid, radius: float) -> np.ndarray:
    """How many terminals each customer can use."""
    counts: I64 = _near(
        profiles.customer_x,
        profiles.customer_y,
        grid.starts,
        grid.ids,
        grid.x,
        grid.y,
        grid.cell,
        grid.n_cells,
        radius,
        _NONE,
        _NONE.astype(np.int32),
        False,
    )
    return counts


@numba.njit(cache=True, inline="always")
def _cell_range(v: float, cell: float, n_cells: int) -> tuple[int, int]:
    c = min(int(v / cell), n_cells - 1)
    return max(c - 1, 0), min(c + 1, n_cells - 1)


@numba.njit(cache=True, parallel=True)
def _near(
    cx: F64,
    cy: F64,
    starts: I64,
    ids: I32,
    tx: F64,
    ty: F64,
    cell: float,
    n_cells: int,
    radius: float,
    indptr: I64,
    out: I32,
    fill: bool,
) -> I64:
    """Count (``fill`` False) or list (``fill`` True, at ``indptr``) each customer's terminals."""
    counts = np.zeros(cx.shape[0], dtype=np.int64)
    for i in numba.prange(cx.shape[0]):
        x0, x1 = _cell_range(cx[i], cell, n_cells)
        y0, y1 = _cell_range(cy[i], cell, n_cells)
        n = 0
        for gx in range(x0, x1 + 1):
            for gy in range(y0, y1 + 1):
                c = gx * n_cells + gy
                for k in range(starts[c], starts[c + 1]):
                    t = ids[k]
                    if np.sqrt((cx[i] - tx[t]) ** 2 + (cy[i] - ty[t]) ** 2) < radius:
                        if fill:
                            out[indptr[i] + n] = t
                        n += 1
        counts[i] = n
        if fill:  # cells are visited column by column, so ids are not globally ascending: sort them
            out[indptr[i] : indptr[i] + n].sort()
    return counts


_NONE = np.zeros(1, dtype=np.int64)
