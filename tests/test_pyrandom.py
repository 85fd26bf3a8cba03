"""The compiled emulation of Python's ``random.Random(seed)`` against CPython itself."""

from __future__ import annotations

import random

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from fraudflow.simulate.pyrandom import randbelow, seed_state


@given(seed=st.integers(min_value=0, max_value=2**32 - 1))
@settings(max_examples=50, deadline=None)
def test_seeded_state_equals_cpython(seed: int) -> None:
    expected = np.array(random.Random(seed).getstate()[1][:624], dtype=np.uint32)
    assert np.array_equal(seed_state(seed)[:624], expected)


@given(
    seed=st.integers(min_value=0, max_value=10**6),
    sizes=st.lists(st.integers(min_value=1, max_value=5000), min_size=1, max_size=400),
)
@settings(max_examples=50, deadline=None)
def test_randbelow_draws_equal_cpython_choice(seed: int, sizes: list[int]) -> None:
    ours = seed_state(seed)
    theirs = random.Random(seed)
    for n in sizes:  # choice(seq) is seq[_randbelow(len(seq))]
        assert randbelow(ours, n) == theirs.choice(range(n))
