"""An XGBoost model's trees as flat arrays, scored and explained (exact TreeSHAP) by compiled kernels.

XGBoost answers one row in 150-300 µs, mostly the cost of its calling convention (a DMatrix or an
in-place adapter, thread dispatch); the trees themselves take a few µs. ``Forest`` reads the
model's JSON dump once (trees, split thresholds, default directions, leaf values, covers) and
evaluates it in numba:

- ``margin``: the sum of the leaves each row reaches plus the base margin. Features are compared
  as float32, as XGBoost stores them, so every row takes XGBoost's path (``x < threshold`` goes
  left, a missing value takes the node's default direction), and the leaves are added in float32
  in XGBoost's order: the margins equal XGBoost's ``output_margin`` bit for bit.
- ``contributions``: the exact TreeSHAP values of Lundberg, Erion and Lee (2018, "Consistent
  individualized feature attribution for tree ensembles", Algorithm 2), weighted by the nodes'
  covers (XGBoost's ``sum_hessian``), one column per feature and the bias last: the base margin
  plus each tree's cover-weighted mean leaf. They are computed in float64 (XGBoost's
  ``pred_contribs`` works in float32: the two agree to 1e-6 of the row's total attribution), and
  a row's columns sum to its float64 margin. Trees of up to 6 levels are explained through
  per-leaf tables computed once (``LeafTables``), small ones (fraudflow's depth 3) through per-tree
  tables by the directions a row takes at the splits (``SplitPatterns``: 2.7 µs a row where the
  leaf tables take 12), deeper ones by Algorithm 2 itself.
- ``one_row``: a single row's probability and strongest contributions, its standardization
  included, in one compiled call (the service's usual batch at light load): the same bits as the
  batch's way, without its dozen numpy and dispatch calls' fixed costs.

Only what fraudflow trains is read: the ``gbtree`` booster, one output group, numerical splits,
the ``binary:logistic`` objective; anything else is refused with a ``ConfigError``.
"""

from __future__ import annotations

import dataclasses
import functools
import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
from numba import njit

from fraudflow import _numba as _numba  # numba settings before any kernel
from fraudflow.errors import ConfigError

F64 = np.ndarray
I64 = np.ndarray
#: ``Forest.one_row``: a row's probability, strongest columns and their values.
OneRow = Callable[[np.ndarray], tuple[F64, I64, F64]]


@dataclass(frozen=True)
class Forest:
    """The trees of one model, node arrays concatenated; tree ``t`` owns nodes ``starts[t]:starts[t+1]``.

    Children are absolute node indices (-1 for a leaf), ``missing`` the child a missing value goes
    to (the node's default direction); ``value`` holds a leaf's output; ``mean`` each tree's
    cover-weighted mean output (its expected value, the bias term's part). Node arrays are int32
    and float32 (XGBoost's own precision): the walks read half the bytes.
    """

    n_features: int
    base_margin: float
    starts: I64
    left: np.ndarray  # int32
    right: np.ndarray  # int32
    missing: np.ndarray  # int32
    feature: np.ndarray  # int32
    threshold: np.ndarray  # float32
    value: np.ndarray  # float32
    cover: F64
    mean: F64
    depth: int
    tables: LeafTables | None = None
    patterns: SplitPatterns | None = None

    @classmethod
    def from_json(cls, model_json: str | bytes | bytearray) -> Forest:
        """The forest of an XGBoost model saved as JSON (``Booster.save_raw("json")``)."""
        learner = json.loads(model_json)["learner"]
        objective = learner["objective"]["name"]
        booster = learner["gradient_booster"]
        if booster.get("name") != "gbtree" or objective != "binary:logistic":
            raise ConfigError(
                f"only gbtree models with the binary:logistic objective can be compiled; "
                f"this one is {booster.get('name')!r} with {objective!r}"
            )
        params = learner["learner_model_param"]
        if int(params.get("num_class", "0")) > 1 or int(params.get("num_target", "1")) != 1:
            raise ConfigError("only single-output models can be compiled")
        trees = booster["model"]["trees"]
        if any(t["categories_nodes"] for t in trees):
            raise ConfigError("models with categorical splits cannot be compiled")
        # the base score is a probability; its margin is computed as XGBoost does, in float32
        base = np.float32(params["base_score"].strip("[]"))
        base_margin = float(-np.log(np.float32(1.0) / base - np.float32(1.0)))
        return cls._from_trees(trees, int(params["num_feature"]), base_margin)

    @classmethod
    def _from_trees(cls, trees: list[dict[str, Any]], n_features: int, base_margin: float) -> Forest:
        sizes = [len(t["left_children"]) for t in trees]
        starts = np.zeros(len(trees) + 1, dtype=np.int64)
        np.cumsum(sizes, out=starts[1:])

        def joined(key: str, dtype: Any) -> np.ndarray:
            if not trees:
                return np.zeros(0, dtype=dtype)
            return np.concatenate([np.asarray(t[key], dtype=dtype) for t in trees])

        offsets = np.repeat(starts[:-1], sizes)
        left = joined("left_children", np.int64)
        right = joined("right_children", np.int64)
        left = np.where(left < 0, -1, left + offsets)
        right = np.where(right < 0, -1, right + offsets)
        conditions = joined("split_conditions", np.float64)
        is_leaf = left < 0
        threshold = np.where(is_leaf, 0.0, conditions).astype(np.float32)
        value = np.where(is_leaf, conditions, 0.0).astype(np.float32)
        cover = joined("sum_hessian", np.float64)
        feature = np.where(is_leaf, -1, joined("split_indices", np.int64))
        mean = np.zeros(len(trees), dtype=np.float64)
        depth = 0
        for t in range(len(trees)):
            mean[t], d = _mean_and_depth(int(starts[t]), left, right, value, cover)
            depth = max(depth, d)
        tables = LeafTables.build(starts, left, right, feature, value, cover) if depth <= TABLE_MAX_DEPTH else None
        patterns = None
        if tables is not None and max(sizes, default=0) <= 2 * PATTERN_MAX_SPLITS + 1:
            patterns = SplitPatterns.build(starts, left, right, feature, value.astype(np.float32), tables)
        missing = np.where(joined("default_left", np.int64).astype(np.bool_), left, right)
        return cls(
            n_features=n_features,
            base_margin=base_margin,
            starts=starts,
            left=left.astype(np.int32),
            right=right.astype(np.int32),
            missing=missing.astype(np.int32),
            feature=feature.astype(np.int32),
            threshold=threshold,
            value=value,
            cover=cover,
            mean=mean,
            depth=depth,
            tables=tables,
            patterns=patterns,
        )

    def margin(self, x: np.ndarray) -> F64:
        """Each row's raw score (log-odds): the base margin plus the leaves it reaches."""
        return self.explain(x, contributions=False)[0]

    def probability(self, x: np.ndarray) -> F64:
        """Each row's fraud probability, ``binary:logistic``'s sigmoid of the margin."""
        return probability(self.margin(x))

    def contributions(self, x: np.ndarray) -> F64:
        """Exact TreeSHAP values: ``n_features`` columns, then the bias; a row sums to its margin."""
        return self.explain(x)[1]

    def explain(self, x: np.ndarray, contributions: bool = True) -> tuple[F64, F64]:
        """Each row's margin and (with ``contributions``) its TreeSHAP values, in one pass over the trees."""
        rows = self._rows(x)
        if self.patterns is not None:
            # a batch tree by tree (each tree's table read while it is in cache), a few rows row by row
            kernel = _explain_by_patterns if len(rows) < BY_TREES else _explain_by_patterns_tree_by_tree
            margin, out = kernel(rows, self.base_margin, self.n_features, *self._pattern_arrays)
            if not contributions:
                return margin, out
        else:
            trees = (rows, self.starts, self.left, self.right, self.missing, self.feature, self.threshold, self.value)
            if self.tables is not None or not contributions:
                tables = self._table_arrays if contributions else _NO_TABLES
                margin, out = _explain_by_tables(*trees, self.base_margin, self.n_features, *tables)
            else:
                margin, out = _explain(*trees, self.base_margin, self.cover, self.n_features, self.depth)
        out[:, self.n_features] = self._bias
        return margin, out

    @functools.cached_property
    def _pattern_arrays(self) -> tuple[np.ndarray, ...]:
        """The split patterns' arrays as the kernel takes them, with the splits' own."""
        p = self.patterns
        assert p is not None
        nodes = p.splits
        return (
            p.split_start,
            self.feature[nodes],
            self.threshold[nodes],
            (self.missing[nodes] == self.left[nodes]).astype(np.bool_),
            p.leaf_start,
            p.leaf_value,
            p.features_start,
            p.features,
            p.table_start,
            p.table,
        )

    @functools.cached_property
    def _table_arrays(self) -> tuple[np.ndarray, ...]:
        """The leaf tables' arrays as the kernel takes them (``dataclasses.astuple`` would copy them)."""
        assert self.tables is not None
        return tuple(getattr(self.tables, f.name) for f in dataclasses.fields(self.tables))

    @functools.cached_property
    def _bias(self) -> float:
        """The expected margin: the base plus each tree's mean output."""
        return float(self.base_margin + self.mean.sum())

    def one_row(self, inputs: I64, mean: F64, scale: F64, k: int) -> OneRow | None:
        """A single row's answer in one compiled call: of ``vectors`` (shape (1, n)), its probability
        (shape (1,)) and its ``k`` strongest contributions' columns and values (shape (1, k)), the
        model's inputs its columns ``inputs`` standardized by ``mean`` and ``scale``. The same values
        bit for bit as ``Model.standardize``, ``explain``, ``strongest`` and ``probability`` give the
        row: the same operations in the same order (the batch's kernels themselves, but for split
        patterns, whose arrays are packed in two: ``_packed_patterns``). 5 µs warm for fraudflow's
        100 depth-3 trees where the batch path takes 15, 13 in the service where it took 41. None
        when ``inputs`` are not this forest's number of features."""
        if not len(inputs) == len(mean) == len(scale) == self.n_features:
            return None
        prepared = (
            np.ascontiguousarray(inputs, dtype=np.int64),
            np.ascontiguousarray(mean, dtype=np.float64),
            np.ascontiguousarray(scale, dtype=np.float64),
            min(k, self.n_features),
            self.base_margin,
            self.n_features,
        )
        if self.patterns is not None:
            return functools.partial(_judge_by_patterns, *self._packed_patterns(*prepared[:4]))
        trees = (self.starts, self.left, self.right, self.missing, self.feature, self.threshold, self.value)
        if self.tables is not None:
            return functools.partial(_judge_by_tables, *prepared, *trees, *self._table_arrays)
        return functools.partial(_judge_by_algorithm_2, *prepared, *trees, self.cover, self.depth)

    def _packed_patterns(self, inputs: I64, mean: F64, scale: F64, k: int) -> tuple[np.ndarray, F64]:
        """``_judge_by_patterns``' two arrays: what a row reads in order, and what it reads by pattern.

        ``heads`` (int32): the number of trees, of features, ``k``, the ``inputs``; then each tree's
        number of splits s and of split features m, its splits' features, default directions (1:
        left) and thresholds (float32's bits), its split features. ``reals`` (float64): the base
        margin, ``mean``, ``scale``; then each tree's 2**s patterns, each its leaf's value (a float32)
        and its m contributions. Three arguments where the split patterns' arrays make 17 (each
        costs the call 0.1-0.3 µs), and a tree's part of a row's work in two places, not five."""
        (split_start, split_feature, split_threshold, split_missing_left, leaf_start, leaf_value, features_start,
         features, table_start, table) = self._pattern_arrays  # fmt: skip
        heads = [np.array([len(split_start) - 1, self.n_features, k], dtype=np.int32), inputs.astype(np.int32)]
        reals = [np.array([self.base_margin]), mean, scale]
        for t in range(len(split_start) - 1):
            splits = slice(split_start[t], split_start[t + 1])
            s, m = splits.stop - splits.start, features_start[t + 1] - features_start[t]
            head = [split_feature[splits], split_missing_left[splits], split_threshold[splits].view(np.int32)]
            heads += [np.array([s, m], dtype=np.int32), *head, features[features_start[t] : features_start[t + 1]]]
            patterns = np.empty((1 << s, m + 1))
            patterns[:, 0] = leaf_value[leaf_start[t] : leaf_start[t + 1]]
            patterns[:, 1:] = table[table_start[t] : table_start[t + 1]].reshape(1 << s, m)
            reals.append(patterns.ravel())
        return np.concatenate(heads, dtype=np.int32), np.concatenate(reals)

    def _rows(self, x: np.ndarray) -> np.ndarray:
        rows = np.ascontiguousarray(np.atleast_2d(x), dtype=np.float32)
        if rows.shape[1] != self.n_features:
            raise ConfigError(f"the model takes {self.n_features} features; rows have {rows.shape[1]}")
        return rows


def strongest(contributions: F64, k: int, columns: int) -> tuple[I64, F64]:
    """Each row's ``k`` largest contributions by absolute value among its first ``columns`` (ties:
    the first column first, as a stable sort): their columns and values. One compiled pass where
    numpy takes five operations, each costing more than the work for a row or two."""
    return _strongest(np.ascontiguousarray(contributions), min(k, columns), columns)


@njit(cache=True)
def _strongest(contributions: F64, k: int, m: int) -> tuple[I64, F64]:
    """One pass over each row keeping its ``k`` largest so far in order (a column enters ahead of the
    kept ones strictly smaller only: the first of equals first); a row with a NaN by ``_select``
    (where a NaN first in line is taken and never beaten)."""
    n = contributions.shape[0]
    order = np.empty((n, k), dtype=np.int64)
    values = np.empty((n, k), dtype=np.float64)
    top = np.empty(max(k, 1), dtype=np.float64)  # the absolute values kept, largest first
    for r in range(n):
        row = contributions[r]
        kept = 0
        for j in range(m):
            a = abs(row[j])
            if a != a:
                break
            if kept < k:
                p = kept
                kept += 1
            elif a > top[k - 1]:
                p = k - 1
            else:
                continue
            while p > 0 and top[p - 1] < a:
                top[p] = top[p - 1]
                order[r, p] = order[r, p - 1]
                p -= 1
            top[p] = a
            order[r, p] = j
        else:
            for t in range(k):
                values[r, t] = row[order[r, t]]
            continue
        _select(row, order[r], values[r], k, m)
    return order, values


@njit(cache=True)
def _select(row: F64, order: I64, values: F64, k: int, m: int) -> None:
    """The ``k`` largest absolute values of ``row[:m]`` by ``k`` passes, the first of equals first."""
    for t in range(k):
        best = -1
        for j in range(m):
            taken = False
            for u in range(t):
                taken = taken or order[u] == j
            if not taken and (best < 0 or abs(row[j]) > abs(row[best])):
                best = j
        order[t] = best
        values[t] = row[best]


def probability(margin: F64) -> F64:
    """``binary:logistic``'s sigmoid of margins (a 1-D array), compiled: numpy's own ``exp`` (its SIMD
    one on AVX-512) may differ from the C library's in the last bit, and ``Forest.one_row`` must
    give the same bits; one call costs 1 µs, numpy's three took 3.6."""
    return _probability(np.ascontiguousarray(margin, dtype=np.float64))


@njit(cache=True)
def _probability(margin: F64) -> F64:
    out = np.empty(margin.shape[0], dtype=np.float64)
    for i in range(margin.shape[0]):
        out[i] = _sigmoid(margin[i])
    return out


@njit(cache=True, inline="always")
def _sigmoid(margin: float) -> float:
    """The C library's ``exp`` (numba's, never a SIMD one: a loop of these is not vectorized
    without Intel's SVML, which fraudflow does not install)."""
    probability: float = 1.0 / (1.0 + np.exp(-margin))
    return probability


@njit(cache=True)
def _standardized(vectors: F64, inputs: I64, mean: F64, scale: F64) -> np.ndarray:
    """``vectors``' first row's ``inputs`` columns standardized (in float64, as ``Model.standardize``),
    then float32 (as ``Forest`` reads rows): one row of float32."""
    row = np.empty((1, inputs.shape[0]), dtype=np.float32)
    for j in range(inputs.shape[0]):
        row[0, j] = np.float32((vectors[0, inputs[j]] - mean[j]) / scale[j])
    return row


@njit(cache=True)
def _judge_by_patterns(heads: np.ndarray, reals: F64, vectors: F64) -> tuple[F64, I64, F64]:
    """``Forest.one_row``'s kernel for ``SplitPatterns`` (``Forest._packed_patterns``' arrays): the probability,
    the strongest columns and values. ``_explain_by_patterns``' sums in its order: its margin (float32,
    tree by tree) and contributions (float64, tree by tree, a tree's features in order)."""
    n_trees, n_features, k = heads[0], heads[1], heads[2]
    thresholds = heads.view(np.float32)
    row = np.empty(n_features, dtype=np.float32)
    for j in range(n_features):
        row[j] = np.float32((vectors[0, heads[3 + j]] - reals[1 + j]) / reals[1 + n_features + j])
    out = np.zeros((1, n_features), dtype=np.float64)
    phi = out[0]
    total = np.float32(reals[0])
    h = 3 + n_features
    r = 1 + 2 * n_features
    for _ in range(n_trees):
        s, m = heads[h], heads[h + 1]
        h += 2
        p = 0
        for q in range(s):
            x = row[heads[h + q]]
            # left below the threshold; a missing value (NaN) by the default direction
            if x < thresholds[h + 2 * s + q] or (x != x and heads[h + s + q] != 0):
                p |= 1 << q
        at = r + p * (m + 1)
        total += np.float32(reals[at])
        h += 3 * s
        for i in range(m):
            phi[heads[h + i]] += reals[at + 1 + i]
        h += m
        r += (1 << s) * (m + 1)
    order, values = _strongest(out, k, n_features)
    score = np.empty(1, dtype=np.float64)
    score[0] = _sigmoid(np.float64(total))  # float() of a float32 is a float32 in numba
    return score, order, values


@njit(cache=True)
def _judge_by_tables(inputs: I64, mean: F64, scale: F64, k: int, base: float, n_features: int,
                     starts: I64, left: np.ndarray, right: np.ndarray, missing: np.ndarray, feature: np.ndarray,
                     threshold: np.ndarray, value: np.ndarray, leaves: I64, tree_leaves: I64, path_start: I64,
                     path_node: I64, path_child: I64, path_bit: I64, features_start: I64, features: I64,
                     table_start: I64, table: F64, vectors: F64) -> tuple[F64, I64, F64]:  # fmt: skip
    """``Forest.one_row``'s kernel for ``LeafTables``."""
    rows = _standardized(vectors, inputs, mean, scale)
    margin, out = _explain_by_tables(rows, starts, left, right, missing, feature, threshold, value, base, n_features,
                                     leaves, tree_leaves, path_start, path_node, path_child, path_bit, features_start,
                                     features, table_start, table)  # fmt: skip
    order, values = _strongest(out, k, n_features)
    margin[0] = _sigmoid(margin[0])
    return margin, order, values


@njit(cache=True)
def _judge_by_algorithm_2(inputs: I64, mean: F64, scale: F64, k: int, base: float, n_features: int,
                          starts: I64, left: np.ndarray, right: np.ndarray, missing: np.ndarray, feature: np.ndarray,
                          threshold: np.ndarray, value: np.ndarray, cover: F64,
                          depth: int, vectors: F64) -> tuple[F64, I64, F64]:  # fmt: skip
    """``Forest.one_row``'s kernel for deeper trees (Algorithm 2)."""
    rows = _standardized(vectors, inputs, mean, scale)
    margin, out = _explain(rows, starts, left, right, missing, feature, threshold, value, base, cover, n_features,
                           depth)  # fmt: skip
    order, values = _strongest(out, k, n_features)
    margin[0] = _sigmoid(margin[0])
    return margin, order, values


#: Trees up to this depth are explained through per-leaf tables (at most 2**6 * 6 numbers a leaf);
#: deeper ones by Algorithm 2 itself, about 10 times slower.
TABLE_MAX_DEPTH = 6


@dataclass(frozen=True)
class LeafTables:
    """Each leaf's TreeSHAP contributions for every way a row can agree with its path, computed once.

    A leaf's value reaches a coalition S of features in path-dependent TreeSHAP as
    ``value * prod(o_j for j in S) * prod(z_j for j on the path, not in S)``, where z_j is the
    product of the cover fractions of the path's splits on feature j and o_j is 1 when the row
    satisfies all of them, else 0. So a leaf's contributions depend on the row only through the
    set A of path features it satisfies: one of 2**m sets for m distinct features on the path.
    The table holds, for each A, the m Shapley values (sum over S within A minus i of
    ``|S|! (m-|S|-1)! / m!`` times the marginal gain of adding i). Per row a tree costs one
    comparison per split and, per leaf, a mask and m additions: no division at scoring time.
    """

    leaves: I64  # leaf node indices, tree by tree
    tree_leaves: I64  # tree t's leaves are leaves[tree_leaves[t]:tree_leaves[t+1]]
    path_start: I64  # per leaf (by position in leaves): its path's splits are path_*[path_start[l]:path_start[l+1]]
    path_node: I64
    path_child: I64  # the child the path takes at that split
    path_bit: I64  # which of the leaf's distinct features the split tests
    features_start: I64  # per leaf: its distinct features are features[features_start[l]:features_start[l+1]]
    features: I64
    table_start: I64  # per leaf: 2**m rows of m contributions at table[table_start[l]:]
    table: F64

    @classmethod
    def build(cls, starts: I64, left: I64, right: I64, feature: I64, value: F64, cover: F64) -> LeafTables:
        leaves: list[int] = []
        tree_leaves = [0]
        path_start, path_node, path_child, path_bit = [0], [], [], []
        features_start, features = [0], []
        table_start, tables = [0], []
        for t in range(len(starts) - 1):
            stack: list[tuple[int, list[tuple[int, int]]]] = [(int(starts[t]), [])]
            while stack:
                node, path = stack.pop()
                if left[node] >= 0:
                    stack.append((int(right[node]), [*path, (node, int(right[node]))]))
                    stack.append((int(left[node]), [*path, (node, int(left[node]))]))
                    continue
                distinct: list[int] = []
                zero: list[float] = []
                for split, child in path:
                    f = int(feature[split])
                    if f not in distinct:
                        distinct.append(f)
                        zero.append(1.0)
                    bit = distinct.index(f)
                    zero[bit] *= cover[child] / cover[split]
                    path_node.append(split)
                    path_child.append(child)
                    path_bit.append(bit)
                leaves.append(node)
                path_start.append(len(path_node))
                features.extend(distinct)
                features_start.append(len(features))
                table = _leaf_table(np.array(zero, dtype=np.float64), float(value[node]))
                tables.append(table)
                table_start.append(table_start[-1] + table.size)
            tree_leaves.append(len(leaves))

        def ints(v: list[int]) -> I64:
            return np.array(v, dtype=np.int64)

        return cls(
            leaves=ints(leaves),
            tree_leaves=ints(tree_leaves),
            path_start=ints(path_start),
            path_node=ints(path_node),
            path_child=ints(path_child),
            path_bit=ints(path_bit),
            features_start=ints(features_start),
            features=ints(features),
            table_start=ints(table_start),
            table=np.concatenate(tables) if tables else np.zeros(0),
        )


#: Trees of at most this many splits are explained through per-tree tables (``SplitPatterns``):
#: 2**splits rows each (depth 3: 7 splits, 128 rows).
PATTERN_MAX_SPLITS = 8
#: From this many rows on, the split patterns' kernel goes tree by tree over all the rows (1.7 ms
#: for 1,000 rows of fraudflow-4's 100 trees where row by row takes 2.8); below, row by row (the
#: columns' transposes cost more than they save).
BY_TREES = 16


@dataclass(frozen=True)
class SplitPatterns:
    """Each tree's leaf and TreeSHAP contributions for every way a row can go at its splits, computed once.

    A tree's contributions depend on the row only through the direction it takes at each split
    (which leaf it reaches, and which path features each leaf's table sees satisfied): a tree of s
    splits has 2**s patterns. For small trees (fraudflow's depth 3: 7 splits, 128 patterns) the
    sums of the leaf tables (``LeafTables``) for every pattern fit in a table: per row a tree costs
    one comparison per split and one addition per feature it splits on, where the leaf tables cost
    a pass over every leaf's path. Pattern bit k is set when the row goes left at the tree's k-th split.
    """

    splits: I64  # the internal nodes, tree by tree: tree t's are splits[split_start[t]:split_start[t+1]]
    split_start: I64
    leaf_start: I64  # tree t's pattern p reaches the leaf of value leaf_value[leaf_start[t] + p]
    leaf_value: np.ndarray  # float32
    features_start: I64  # tree t's distinct split features: features[features_start[t]:features_start[t+1]]
    features: I64
    table_start: I64  # tree t's pattern p: its contributions, one per feature, at table[table_start[t] + p * m:]
    table: F64

    @classmethod
    def build(
        cls, starts: I64, left: I64, right: I64, feature: I64, value: np.ndarray, tables: LeafTables
    ) -> SplitPatterns:
        n_trees = len(starts) - 1
        splits: list[int] = []
        split_start, features_start, features = [0], [0], list[int]()
        for t in range(n_trees):
            nodes = [n for n in range(int(starts[t]), int(starts[t + 1])) if left[n] >= 0]
            splits.extend(nodes)
            split_start.append(len(splits))
            features.extend(dict.fromkeys(int(feature[n]) for n in nodes))
            features_start.append(len(features))
        arrays = [np.array(v, dtype=np.int64) for v in (splits, split_start, features_start, features)]
        leaf_start, leaf_value, table_start, table = _pattern_tables(
            starts, left, right, value, *arrays, *(getattr(tables, f.name) for f in dataclasses.fields(tables))
        )
        return cls(arrays[0], arrays[1], leaf_start, leaf_value, arrays[2], arrays[3], table_start, table)


@njit(cache=True)
def _pattern_tables(starts: I64, left: I64, right: I64, value: np.ndarray, splits: I64, split_start: I64,
                    features_start: I64, features: I64, leaves: I64, tree_leaves: I64, path_start: I64,
                    path_node: I64, path_child: I64, path_bit: I64, leaf_features_start: I64, leaf_features: I64,
                    leaf_table_start: I64, leaf_table: F64) -> tuple[I64, np.ndarray, I64, F64]:  # fmt: skip
    """``SplitPatterns``' tables: for each tree and pattern, the leaf's value and the sum of every
    leaf's table row for the path features the pattern satisfies."""
    n_trees = starts.shape[0] - 1
    leaf_start = np.zeros(n_trees + 1, dtype=np.int64)
    table_start = np.zeros(n_trees + 1, dtype=np.int64)
    for t in range(n_trees):
        patterns = 1 << (split_start[t + 1] - split_start[t])
        leaf_start[t + 1] = leaf_start[t] + patterns
        table_start[t + 1] = table_start[t] + patterns * (features_start[t + 1] - features_start[t])
    leaf_value = np.empty(leaf_start[n_trees], dtype=np.float32)
    table = np.zeros(table_start[n_trees], dtype=np.float64)
    hot = np.empty(left.shape[0], dtype=np.int64)
    for t in range(n_trees):
        s0 = split_start[t]
        f0 = features_start[t]
        m = features_start[t + 1] - f0
        for p in range(1 << (split_start[t + 1] - s0)):
            for k in range(s0, split_start[t + 1]):
                node = splits[k]
                hot[node] = left[node] if (p >> (k - s0)) & 1 else right[node]
            node = starts[t]
            while left[node] >= 0:
                node = hot[node]
            leaf_value[leaf_start[t] + p] = value[node]
            for leaf in range(tree_leaves[t], tree_leaves[t + 1]):
                l0 = leaf_features_start[leaf]
                lm = leaf_features_start[leaf + 1] - l0
                satisfied = (1 << lm) - 1
                for q in range(path_start[leaf], path_start[leaf + 1]):
                    if hot[path_node[q]] != path_child[q]:
                        satisfied &= ~(1 << path_bit[q])
                at = leaf_table_start[leaf] + satisfied * lm
                for i in range(lm):
                    j = 0
                    while features[f0 + j] != leaf_features[l0 + i]:
                        j += 1
                    table[table_start[t] + p * m + j] += leaf_table[at + i]
    return leaf_start, leaf_value, table_start, table


@njit(cache=True)
def _explain_by_patterns(rows: np.ndarray, base: float, n_features: int, split_start: I64, split_feature: np.ndarray,
                         split_threshold: np.ndarray, split_missing_left: np.ndarray, leaf_start: I64,
                         leaf_value: np.ndarray, features_start: I64, features: I64, table_start: I64,
                         table: F64) -> tuple[F64, F64]:  # fmt: skip
    """Margins (the leaves added in float32 in tree order, as XGBoost does) and contributions (the
    bias column left to the caller) through ``SplitPatterns``."""
    n_trees = split_start.shape[0] - 1
    margin = np.empty(rows.shape[0], dtype=np.float64)
    out = np.zeros((rows.shape[0], n_features + 1), dtype=np.float64)
    for r in range(rows.shape[0]):
        row = rows[r]
        phi = out[r]
        total = np.float32(base)
        for t in range(n_trees):
            s0 = split_start[t]
            p = 0
            for k in range(s0, split_start[t + 1]):
                x = row[split_feature[k]]
                # left below the threshold; a missing value (NaN) by the default direction
                if x < split_threshold[k] or (x != x and split_missing_left[k]):
                    p |= 1 << (k - s0)
            total += leaf_value[leaf_start[t] + p]
            f0 = features_start[t]
            m = features_start[t + 1] - f0
            at = table_start[t] + p * m
            for i in range(m):
                phi[features[f0 + i]] += table[at + i]
        margin[r] = float(total)
    return margin, out


@njit(cache=True)
def _explain_by_patterns_tree_by_tree(rows: np.ndarray, base: float, n_features: int, split_start: I64,
                                      split_feature: np.ndarray, split_threshold: np.ndarray,
                                      split_missing_left: np.ndarray, leaf_start: I64, leaf_value: np.ndarray,
                                      features_start: I64, features: I64, table_start: I64,
                                      table: F64) -> tuple[F64, F64]:  # fmt: skip
    """``_explain_by_patterns``'s margins and contributions, bit for bit (each row's sums in the same
    order: tree by tree), computed tree by tree over all the rows: a tree's splits over columns of
    the rows, its pattern per row, then each of its features' column of contributions."""
    n_trees = split_start.shape[0] - 1
    n = rows.shape[0]
    columns = np.ascontiguousarray(rows.T)
    totals = np.full(n, np.float32(base), dtype=np.float32)
    by_feature = np.zeros((n_features + 1, n), dtype=np.float64)
    patterns = np.empty(n, dtype=np.int64)
    for t in range(n_trees):
        s0 = split_start[t]
        patterns[:] = 0
        for k in range(s0, split_start[t + 1]):
            column = columns[split_feature[k]]
            threshold = split_threshold[k]
            missing_left = split_missing_left[k]
            bit = 1 << (k - s0)
            for r in range(n):
                x = column[r]
                # left below the threshold; a missing value (NaN) by the default direction
                if x < threshold or (x != x and missing_left):
                    patterns[r] |= bit
        l0 = leaf_start[t]
        for r in range(n):
            totals[r] += leaf_value[l0 + patterns[r]]
        f0 = features_start[t]
        m = features_start[t + 1] - f0
        t0 = table_start[t]
        for i in range(m):
            phi = by_feature[features[f0 + i]]
            for r in range(n):
                phi[r] += table[t0 + patterns[r] * m + i]
    margin = np.empty(n, dtype=np.float64)
    for r in range(n):
        margin[r] = float(totals[r])
    return margin, np.ascontiguousarray(by_feature.T)


def _no_tables() -> LeafTables:
    ints = np.zeros(1, dtype=np.int64)
    return LeafTables(ints[:0], ints, ints, ints[:0], ints[:0], ints[:0], ints, ints[:0], ints, np.zeros(0))


#: No leaf at all: the tables kernel then computes margins only.
_NO_TABLES = tuple(getattr(_no_tables(), f.name) for f in dataclasses.fields(LeafTables))


@njit(cache=True)
def _leaf_table(zero: F64, value: float) -> F64:
    """A leaf's contributions (2**m rows: the satisfied set A as a bit mask; m columns)."""
    m = zero.shape[0]
    # Shapley weights |S|! (m - |S| - 1)! / m!
    weight = np.empty(max(m, 1), dtype=np.float64)
    for s in range(m):
        w = 1.0 / m
        for k in range(1, s + 1):
            w *= k / (m - k)
        weight[s] = w
    out = np.zeros((1 << m) * m, dtype=np.float64)
    poly = np.empty(m + 1, dtype=np.float64)
    for a in range(1 << m):
        for i in range(m):
            # the features other than i: in A they may join S (o_j = 1), outside A they are absent (z_j)
            outside = 1.0
            poly[0] = 1.0
            size = 0  # poly holds the elementary symmetric polynomials of z over B = A minus i
            for j in range(m):
                if j == i:
                    continue
                if (a >> j) & 1:
                    size += 1
                    poly[size] = 0.0
                    for k in range(size, 0, -1):
                        poly[k] += poly[k - 1] * zero[j]
                else:
                    outside *= zero[j]
            total = 0.0
            for s in range(size + 1):  # |S| = s: the other size - s members of B stay absent
                total += weight[s] * poly[size - s]
            gain = ((a >> i) & 1) - zero[i]
            out[a * m + i] = value * gain * outside * total
    return out


def _mean_and_depth(root: int, left: I64, right: I64, value: F64, cover: F64) -> tuple[float, int]:
    """A tree's cover-weighted mean output (XGBoost's node mean value of the root) and its depth."""

    def walk(node: int) -> tuple[float, int]:
        if left[node] < 0:
            return float(value[node]), 0
        lm, ld = walk(int(left[node]))
        rm, rd = walk(int(right[node]))
        total = cover[left[node]] + cover[right[node]]
        mean = (lm * cover[left[node]] + rm * cover[right[node]]) / total if total > 0 else 0.0
        return mean, 1 + max(ld, rd)

    return walk(root)


@njit(cache=True)
def _route(row: np.ndarray, left: np.ndarray, right: np.ndarray, missing: np.ndarray, feature: np.ndarray,
           threshold: np.ndarray, hot: np.ndarray) -> None:  # fmt: skip
    """``hot[node]``: the child each split sends ``row`` to. Left below the threshold, a missing
    value (NaN) by the node's default direction (tested second: features are rarely missing).
    Written out here, not in a function per node: numba did not inline that call (5x slower)."""
    for node in range(left.shape[0]):
        if left[node] >= 0:
            x = row[feature[node]]
            if x < threshold[node]:
                hot[node] = left[node]
            elif x != x:
                hot[node] = missing[node]
            else:
                hot[node] = right[node]


@njit(cache=True)
def _leaf_sum(starts: I64, left: np.ndarray, value: np.ndarray, hot: np.ndarray, base: float) -> float:
    """The margin: the base, then each tree's leaf, added in float32 in tree order as XGBoost does."""
    total = np.float32(base)
    for t in range(starts.shape[0] - 1):
        node = starts[t]
        while left[node] >= 0:
            node = hot[node]
        total += value[node]
    return float(total)


@njit(cache=True)
def _explain(rows: np.ndarray, starts: I64, left: np.ndarray, right: np.ndarray, missing: np.ndarray,
             feature: np.ndarray, threshold: np.ndarray, value: np.ndarray, base: float, cover: F64, n_features: int,
             depth: int) -> tuple[F64, F64]:  # fmt: skip
    margin = np.empty(rows.shape[0], dtype=np.float64)
    out = np.zeros((rows.shape[0], n_features + 1), dtype=np.float64)
    route = np.empty(left.shape[0], dtype=np.int32)
    # Algorithm 2's recursion as a loop over a stack of visits. A visit copies its parent's path
    # to just past it and extends it; siblings share a slot, and a subtree's visits all end
    # before its sibling starts, so a parent's path is intact when the second child copies it.
    slots = (depth + 2) * (depth + 3) // 2
    path_feature = np.empty(slots, dtype=np.int64)
    path_zero = np.empty(slots, dtype=np.float64)
    path_one = np.empty(slots, dtype=np.float64)
    path_weight = np.empty(slots, dtype=np.float64)
    stack_node = np.empty(2 * depth + 2, dtype=np.int64)
    stack_at = np.empty(2 * depth + 2, dtype=np.int64)
    stack_length = np.empty(2 * depth + 2, dtype=np.int64)
    stack_zero = np.empty(2 * depth + 2, dtype=np.float64)
    stack_one = np.empty(2 * depth + 2, dtype=np.float64)
    stack_split = np.empty(2 * depth + 2, dtype=np.int64)
    for r in range(rows.shape[0]):
        _route(rows[r], left, right, missing, feature, threshold, route)
        margin[r] = _leaf_sum(starts, left, value, route, base)
        phi = out[r]
        for t in range(starts.shape[0] - 1):
            top = 0
            stack_node[0] = starts[t]
            stack_at[0] = 0
            stack_length[0] = 0
            stack_zero[0] = 1.0
            stack_one[0] = 1.0
            stack_split[0] = -1
            top = 1
            while top > 0:
                top -= 1
                node = stack_node[top]
                length = stack_length[top]
                at = stack_at[top] + length + 1
                for i in range(length):
                    path_feature[at + i] = path_feature[stack_at[top] + i]
                    path_zero[at + i] = path_zero[stack_at[top] + i]
                    path_one[at + i] = path_one[stack_at[top] + i]
                    path_weight[at + i] = path_weight[stack_at[top] + i]
                _extend(path_feature, path_zero, path_one, path_weight, at, length,
                        stack_zero[top], stack_one[top], stack_split[top])  # fmt: skip
                if left[node] < 0:
                    for i in range(1, length + 1):
                        w = _unwound_sum(path_zero, path_one, path_weight, at, length, i)
                        phi[path_feature[at + i]] += w * (path_one[at + i] - path_zero[at + i]) * value[node]
                    continue
                hot = route[node]
                cold = right[node] if hot == left[node] else left[node]
                incoming_zero = 1.0
                incoming_one = 1.0
                k = 1
                while k <= length and path_feature[at + k] != feature[node]:
                    k += 1
                if k <= length:
                    incoming_zero = path_zero[at + k]
                    incoming_one = path_one[at + k]
                    _unwind(path_feature, path_zero, path_one, path_weight, at, length, k)
                    length -= 1
                w = cover[node]
                # cold first, so that the hot subtree is walked first (the stack is last in, first out)
                for child, one in ((cold, 0.0), (hot, incoming_one)):
                    stack_node[top] = child
                    stack_at[top] = at
                    stack_length[top] = length + 1
                    stack_zero[top] = cover[child] / w * incoming_zero
                    stack_one[top] = one
                    stack_split[top] = feature[node]
                    top += 1
    return margin, out


@njit(cache=True)
def _explain_by_tables(rows: np.ndarray, starts: I64, left: np.ndarray, right: np.ndarray, missing: np.ndarray,
                       feature: np.ndarray, threshold: np.ndarray, value: np.ndarray, base: float, n_features: int,
                       leaves: I64, tree_leaves: I64, path_start: I64, path_node: I64, path_child: I64,
                       path_bit: I64, features_start: I64, features: I64, table_start: I64,
                       table: F64) -> tuple[F64, F64]:  # fmt: skip
    margin = np.empty(rows.shape[0], dtype=np.float64)
    out = np.zeros((rows.shape[0], n_features + 1), dtype=np.float64)
    hot = np.empty(left.shape[0], dtype=np.int32)
    for r in range(rows.shape[0]):
        _route(rows[r], left, right, missing, feature, threshold, hot)
        margin[r] = _leaf_sum(starts, left, value, hot, base)
        phi = out[r]
        for leaf in range(leaves.shape[0]):
            f0 = features_start[leaf]
            m = features_start[leaf + 1] - f0
            satisfied = (1 << m) - 1
            for p in range(path_start[leaf], path_start[leaf + 1]):
                if hot[path_node[p]] != path_child[p]:
                    satisfied &= ~(1 << path_bit[p])
            at = table_start[leaf] + satisfied * m
            for i in range(m):
                phi[features[f0 + i]] += table[at + i]
    return margin, out


@njit(cache=True, inline="always")
def _extend(pf: I64, pz: F64, po: F64, pw: F64, at: int, length: int, zero: float, one: float, split: int) -> None:
    pf[at + length] = split
    pz[at + length] = zero
    po[at + length] = one
    pw[at + length] = 1.0 if length == 0 else 0.0
    for i in range(length - 1, -1, -1):
        pw[at + i + 1] += one * pw[at + i] * (i + 1) / (length + 1)
        pw[at + i] = zero * pw[at + i] * (length - i) / (length + 1)


@njit(cache=True, inline="always")
def _unwind(pf: I64, pz: F64, po: F64, pw: F64, at: int, length: int, k: int) -> None:
    one = po[at + k]
    zero = pz[at + k]
    next_one = pw[at + length]
    for i in range(length - 1, -1, -1):
        if one != 0.0:
            tmp = pw[at + i]
            pw[at + i] = next_one * (length + 1) / ((i + 1) * one)
            next_one = tmp - pw[at + i] * zero * (length - i) / (length + 1)
        else:
            pw[at + i] = pw[at + i] * (length + 1) / (zero * (length - i))
    for i in range(k, length):
        pf[at + i] = pf[at + i + 1]
        pz[at + i] = pz[at + i + 1]
        po[at + i] = po[at + i + 1]


@njit(cache=True, inline="always")
def _unwound_sum(pz: F64, po: F64, pw: F64, at: int, length: int, k: int) -> float:
    one = po[at + k]
    zero = pz[at + k]
    next_one = pw[at + length]
    total = 0.0
    for i in range(length - 1, -1, -1):
        if one != 0.0:
            tmp = next_one * (length + 1) / ((i + 1) * one)
            total += tmp
            next_one = pw[at + i] - tmp * zero * (length - i) / (length + 1)
        else:
            total += pw[at + i] / zero / ((length - i) / (length + 1))
    return total
