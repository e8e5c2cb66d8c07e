"""The numpy Hungarian solver against scipy.optimize.linear_sum_assignment."""

import numpy as np
import pytest

from chromm_addon.fusion.assignment import linear_sum_assignment

scipy_optimize = pytest.importorskip("scipy.optimize")


@pytest.mark.parametrize("seed", range(4))
def test_same_total_cost_as_scipy_on_random_matrices(seed):
    rng = np.random.default_rng(seed)
    for _ in range(60):
        n, m = rng.integers(1, 9, size=2)
        cost = rng.random((n, m)) * 10
        if rng.random() < 0.5:
            cost = np.round(cost)  # ties
        rows, cols = linear_sum_assignment(cost)
        ref_rows, ref_cols = scipy_optimize.linear_sum_assignment(cost)
        assert len(rows) == min(n, m)
        assert len(set(rows.tolist())) == len(rows) and len(set(cols.tolist())) == len(cols)
        assert cost[rows, cols].sum() == pytest.approx(cost[ref_rows, ref_cols].sum(), abs=1e-9)


def test_forbidden_pairs_are_avoided_when_possible():
    cost = np.array([[1.0, np.inf], [np.inf, 5.0], [0.5, 0.2]])
    rows, cols = linear_sum_assignment(cost)
    assert np.isfinite(cost[rows, cols]).all()
    assert cost[rows, cols].sum() == pytest.approx(1.2)


def test_empty():
    rows, cols = linear_sum_assignment(np.zeros((0, 3)))
    assert rows.shape == cols.shape == (0,)
