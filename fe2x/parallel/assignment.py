"""Cost-weighted assignment of work items (macro Gauss points) to RVE groups, without MPI.

Every rank calls these functions with the same costs and gets the same answer, so the
assignment itself needs no communication; only the records that change group move.
"""

from __future__ import annotations

import heapq

import numpy as np

__all__ = ["assign_lpt", "group_loads", "imbalance", "makespan"]


def group_loads(costs: np.ndarray, assignment: np.ndarray, n_groups: int) -> np.ndarray:
    """Summed cost per group: ``loads[g] = sum(costs[assignment == g])``.

    >>> group_loads(np.array([1.0, 2.0, 3.0]), np.array([0, 1, 0]), 2)
    array([4., 2.])
    """
    costs = _check_costs(costs)
    assignment = _check_assignment(assignment, costs.size, n_groups, "assignment")
    return np.bincount(assignment, weights=costs, minlength=n_groups).astype(float)


def makespan(costs: np.ndarray, assignment: np.ndarray, n_groups: int) -> float:
    """Largest group load, the wall time of one round of solves if costs are times.

    >>> makespan(np.array([1.0, 2.0, 3.0]), np.array([0, 1, 0]), 2)
    4.0
    """
    loads = group_loads(costs, assignment, n_groups)
    return float(loads.max()) if loads.size else 0.0


def imbalance(costs: np.ndarray, assignment: np.ndarray, n_groups: int) -> float:
    """Load imbalance ``max(loads) / mean(loads) - 1`` (0 when perfectly balanced or no cost).

    >>> imbalance(np.array([1.0, 2.0, 3.0]), np.array([0, 1, 0]), 2)
    0.33333333333333326
    """
    loads = group_loads(costs, assignment, n_groups)
    mean = loads.mean()
    return float(loads.max() / mean - 1.0) if mean > 0 else 0.0


def assign_lpt(
    costs: np.ndarray,
    n_groups: int,
    current: np.ndarray | None = None,
    tolerance: float = 0.05,
) -> np.ndarray:
    """Assign items to groups by longest-processing-time-first greedy (LPT).

    Items in order of decreasing cost (ties: lower index first) go to the group with the
    least load (ties: fewer items, then lower group index), so the result is deterministic
    and zero-cost items are spread by count. Its makespan is at most (4/3 - 1/(3m)) times
    the optimum for m groups.

    With ``current`` given, ``current`` is returned unchanged when its makespan is within
    ``(1 + tolerance)`` of the LPT one, since moving state costs time; otherwise the LPT
    groups are relabelled to keep as many items as possible where they are.

    Args:
        costs: cost of each item (e.g. the measured time of its last solve), shape (N,), ≥ 0.
        n_groups: number of groups, ≥ 1.
        current: the present group of each item, shape (N,), or None.
        tolerance: relative makespan excess that ``current`` may have and still be kept.

    Returns:
        The group index (0 ... n_groups - 1) of each item, shape (N,), dtype int64.

    >>> assign_lpt(np.array([3.0, 3.0, 2.0, 2.0, 2.0]), 2).tolist()
    [0, 1, 0, 1, 0]
    """
    costs = _check_costs(costs)
    if n_groups < 1:
        raise ValueError(f"the number of groups must be at least 1, got {n_groups}")
    if tolerance < 0:
        raise ValueError(f"tolerance must be non-negative, got {tolerance}")
    if current is not None:
        current = _check_assignment(current, costs.size, n_groups, "current")

    assignment = _lpt(costs, n_groups)
    if current is None:
        return assignment
    if makespan(costs, current, n_groups) <= (1.0 + tolerance) * makespan(
        costs, assignment, n_groups
    ):
        return current.copy()
    return _relabel(assignment, current, n_groups)


def _lpt(costs: np.ndarray, n_groups: int) -> np.ndarray:
    """Plain LPT greedy; see ``assign_lpt``."""
    assignment = np.zeros(costs.size, dtype=np.int64)
    if n_groups == 1:
        return assignment
    order = np.lexsort((np.arange(costs.size), -costs))  # cost descending, then index
    heap = [(0.0, 0, g) for g in range(n_groups)]  # (load, item count, group)
    for item in order.tolist():
        load, count, group = heapq.heappop(heap)
        assignment[item] = group
        heapq.heappush(heap, (load + float(costs[item]), count + 1, group))
    return assignment


def _relabel(assignment: np.ndarray, current: np.ndarray, n_groups: int) -> np.ndarray:
    """Permute group labels of ``assignment`` so that many items keep their ``current`` group.

    Group labels are arbitrary, so a permutation leaves every load unchanged. Labels are
    matched greedily, largest overlap count first (ties: lower indices), which is exact when
    the new groups are the current ones up to a few moved items.
    """
    overlap = np.zeros((n_groups, n_groups), dtype=np.int64)
    np.add.at(overlap, (assignment, current), 1)
    relabel = np.full(n_groups, -1, dtype=np.int64)
    free_new = np.ones(n_groups, dtype=bool)
    free_current = np.ones(n_groups, dtype=bool)
    for _ in range(n_groups):
        masked = np.where(free_new[:, None] & free_current[None, :], overlap, -1)
        new, old = np.unravel_index(int(np.argmax(masked)), masked.shape)
        relabel[new] = old
        free_new[new] = False
        free_current[old] = False
    return relabel[assignment]


def _check_costs(costs: np.ndarray) -> np.ndarray:
    """Costs as a 1D float array, finite and non-negative."""
    costs = np.asarray(costs, dtype=float)
    if costs.ndim != 1:
        raise ValueError(f"costs must be one-dimensional, got shape {costs.shape}")
    if not np.all(np.isfinite(costs)) or np.any(costs < 0):
        raise ValueError("costs must be finite and non-negative")
    return costs


def _check_assignment(assignment: np.ndarray, n_items: int, n_groups: int, name: str) -> np.ndarray:
    """An assignment as an int64 array of length ``n_items`` with values in [0, n_groups)."""
    values = np.asarray(assignment)
    if values.shape != (n_items,) or (values.size and not np.issubdtype(values.dtype, np.integer)):
        raise ValueError(
            f"{name} must be an integer array of shape ({n_items},), "
            f"got {values.dtype} of shape {values.shape}"
        )
    values = values.astype(np.int64, copy=False)
    if values.size and (values.min() < 0 or values.max() >= n_groups):
        raise ValueError(f"{name} holds group indices outside [0, {n_groups})")
    return values
