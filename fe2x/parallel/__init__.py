"""Parallel layout of FE²: RVE groups, Gauss-point assignment to groups, and moving records."""

from fe2x.parallel.assignment import assign_lpt, group_loads, imbalance, makespan
from fe2x.parallel.exchange import route, route_arrays
from fe2x.parallel.layout import (
    GroupLayout,
    LaunchError,
    LayoutError,
    check_launch,
    count_groups,
    split_groups,
)

__all__ = [
    "GroupLayout",
    "LaunchError",
    "LayoutError",
    "assign_lpt",
    "check_launch",
    "count_groups",
    "group_loads",
    "imbalance",
    "makespan",
    "route",
    "route_arrays",
    "split_groups",
]
