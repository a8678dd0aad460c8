"""LPT assignment of Gauss points to RVE groups: coverage, the LPT bound, balance, keep-current."""

import itertools

import numpy as np
import pytest

from fe2x.parallel.assignment import assign_lpt, group_loads, imbalance, makespan


def brute_force_makespan(costs: np.ndarray, n_groups: int) -> float:
    """Optimal makespan by enumerating every assignment (item 0 fixed to group 0 by symmetry)."""
    rest = np.array(list(itertools.product(range(n_groups), repeat=costs.size - 1)))
    assignments = np.hstack([np.zeros((rest.shape[0], 1), dtype=int), rest])
    loads = np.stack([((assignments == g) * costs).sum(axis=1) for g in range(n_groups)])
    return float(loads.max(axis=0).min())


@pytest.mark.parametrize("n_groups", [1, 2, 3, 5])
@pytest.mark.parametrize("n_items", [0, 1, 4, 17])
def test_every_item_assigned_once(n_items, n_groups):
    costs = np.random.default_rng(n_items).uniform(0.1, 2.0, n_items)
    assignment = assign_lpt(costs, n_groups)
    assert assignment.shape == (n_items,)
    assert assignment.dtype == np.int64
    assert np.all((assignment >= 0) & (assignment < n_groups))
    assert group_loads(costs, assignment, n_groups).sum() == pytest.approx(costs.sum())


@pytest.mark.parametrize("n_groups", [2, 3])
def test_lpt_bound_against_brute_force_optimum(n_groups):
    rng = np.random.default_rng(42 + n_groups)
    bound = 4 / 3 - 1 / (3 * n_groups)
    worst = 0.0
    for _ in range(25):
        costs = rng.uniform(0.0, 1.0, rng.integers(n_groups + 1, 9))
        optimum = brute_force_makespan(costs, n_groups)
        ratio = makespan(costs, assign_lpt(costs, n_groups), n_groups) / optimum
        assert ratio <= bound + 1e-12
        worst = max(worst, ratio)
    assert worst >= 1.0


def test_lpt_classic_worst_case_is_reached():
    # Graham's tight instance for m = 2: costs 3, 3, 2, 2, 2; LPT gives 7, optimum 6.
    costs = np.array([3.0, 3.0, 2.0, 2.0, 2.0])
    assert makespan(costs, assign_lpt(costs, 2), 2) == 7.0
    assert brute_force_makespan(costs, 2) == 6.0


@pytest.mark.parametrize("cost", [1.0, 0.0, 0.37])
@pytest.mark.parametrize(("n_items", "n_groups"), [(10, 3), (7, 7), (5, 8), (101, 4)])
def test_equal_costs_balance_counts(cost, n_items, n_groups):
    assignment = assign_lpt(np.full(n_items, cost), n_groups)
    counts = np.bincount(assignment, minlength=n_groups)
    assert counts.max() - counts.min() <= 1


def test_deterministic_with_ties():
    costs = np.array([1.0, 2.0, 1.0, 2.0, 1.0, 0.0, 0.0])
    first = assign_lpt(costs, 3)
    assert np.array_equal(first, assign_lpt(costs.copy(), 3))
    # Cost descending, ties by index: items 1, 3, 0, 2, 4, 5, 6 go to the least loaded group
    # (ties: fewer items, then lower index).
    assert first.tolist() == [2, 0, 2, 1, 0, 1, 1]


def test_keep_current_within_tolerance():
    rng = np.random.default_rng(7)
    costs = rng.uniform(0.5, 1.5, 40)
    lpt = assign_lpt(costs, 4)
    # A slightly different assignment: swap two items of similar cost between groups.
    current = lpt.copy()
    a = int(np.flatnonzero(lpt == 0)[0])
    b = int(np.flatnonzero(lpt == 1)[0])
    current[a], current[b] = lpt[b], lpt[a]
    excess = makespan(costs, current, 4) / makespan(costs, lpt, 4) - 1
    assert excess < 0.2
    kept = assign_lpt(costs, 4, current=current, tolerance=0.2)
    assert np.array_equal(kept, current)
    assert kept is not current


def test_replace_current_when_too_imbalanced_and_move_few_items():
    rng = np.random.default_rng(3)
    costs = rng.uniform(0.5, 1.5, 60)
    lpt = assign_lpt(costs, 3)
    # The same partition under other labels, then three heavy items piled onto group 0.
    current = np.array([2, 0, 1])[lpt]
    heavy = np.argsort(costs)[-3:]
    current[heavy] = 0
    assert imbalance(costs, current, 3) > imbalance(costs, lpt, 3) + 0.05
    new = assign_lpt(costs, 3, current=current, tolerance=0.05)
    assert makespan(costs, new, 3) == pytest.approx(makespan(costs, lpt, 3))
    # Relabelling keeps everything but the moved heavy items in place.
    assert np.count_nonzero(new != current) <= 3
    assert np.count_nonzero(lpt != current) > 30


def test_loads_makespan_imbalance():
    costs = np.array([1.0, 2.0, 3.0, 0.0])
    assignment = np.array([0, 1, 0, 2])
    assert group_loads(costs, assignment, 3).tolist() == [4.0, 2.0, 0.0]
    assert makespan(costs, assignment, 3) == 4.0
    assert imbalance(costs, assignment, 3) == pytest.approx(4.0 / 2.0 - 1.0)
    assert imbalance(np.zeros(3), np.array([0, 1, 2]), 3) == 0.0


@pytest.mark.parametrize(
    ("costs", "n_groups", "current", "match"),
    [
        (np.array([1.0, -1.0]), 2, None, "non-negative"),
        (np.array([1.0, np.nan]), 2, None, "finite"),
        (np.ones((2, 2)), 2, None, "one-dimensional"),
        (np.ones(3), 0, None, "at least 1"),
        (np.ones(3), 2, np.array([0, 1]), r"shape \(3,\)"),
        (np.ones(3), 2, np.array([0, 1, 2]), r"outside \[0, 2\)"),
        (np.ones(3), 2, np.array([0.0, 1.0, 1.0]), "integer array"),
    ],
)
def test_errors(costs, n_groups, current, match):
    with pytest.raises(ValueError, match=match):
        assign_lpt(costs, n_groups, current=current)
