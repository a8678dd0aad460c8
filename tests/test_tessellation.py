"""Tests of periodic Voronoi/Laguerre tessellations and polycrystal cells: labels against brute
force, reproducibility, exact cell measures against closed forms and published Poisson–Voronoi
statistics, convergence of voxel volumes and boundary areas, and the meshed cell on any rank."""

import itertools

from mpi4py import MPI

import dolfinx
import numpy as np
import pytest
import ufl
from test_voxels import check_voxels

from fe2x.errors import GeometryError
from fe2x.geometry.packing import periodic_distances
from fe2x.geometry.polycrystal import GRAIN, polycrystal_cell
from fe2x.geometry.tessellation import (
    cell_measures,
    grain_labels,
    random_seeds,
    voxel_centres,
    voxel_measures,
)

COMMS = [MPI.COMM_WORLD, MPI.COMM_SELF]


def brute_force_labels(shape, L, seeds, weights=None):
    """argmin over seeds and all 3^dim periodic images of |x - s - kL|² - w."""
    x = voxel_centres(shape, L)
    w = np.zeros(len(seeds)) if weights is None else np.asarray(weights)
    best = np.full(len(x), np.inf)
    label = np.zeros(len(x), dtype=int)
    for k in itertools.product((-1, 0, 1), repeat=len(L)):
        image = seeds + np.asarray(k) * L
        d = ((x[:, None, :] - image[None, :, :]) ** 2).sum(axis=2) - w[None, :]
        i = d.argmin(axis=1)
        closer = d[np.arange(len(x)), i] < best
        best[closer] = d[np.arange(len(x)), i][closer]
        label[closer] = i[closer]
    return label.reshape(shape)


@pytest.mark.parametrize("dim", [2, 3])
def test_labels_match_brute_force(dim):
    L = np.array([1.0, 0.7, 1.2][:dim])
    shape = (13, 9, 11)[:dim]
    seeds = random_seeds(dim, L, 9, seed=11)
    assert np.array_equal(grain_labels(shape, L, seeds), brute_force_labels(shape, L, seeds))
    w = np.random.default_rng(5).random(9) * 0.05
    assert np.array_equal(grain_labels(shape, L, seeds, w), brute_force_labels(shape, L, seeds, w))


def test_laguerre_with_equal_weights_is_voronoi():
    L = np.ones(3)
    seeds = random_seeds(3, L, 15, seed=2)
    voronoi = grain_labels((10, 10, 10), L, seeds)
    for c in (0.0, 0.37):
        assert np.array_equal(grain_labels((10, 10, 10), L, seeds, np.full(15, c)), voronoi)
        m = cell_measures(seeds, L, np.full(15, c))
        assert np.allclose(m.volumes, cell_measures(seeds, L).volumes, rtol=0, atol=1e-12)


def test_seeds_reproducible_and_wrapped():
    L = [1.0, 2.0]
    a, b = random_seeds(2, L, 20, 7), random_seeds(2, L, 20, 7)
    assert np.array_equal(a, b) and not np.array_equal(a, random_seeds(2, L, 20, 8))
    assert np.all(a >= 0) and np.all(a < L)
    shifted = a + np.array([3.0, -4.0])  # whole periods: the same tessellation
    assert np.array_equal(grain_labels((8, 16), L, a), grain_labels((8, 16), L, shifted))


def test_hard_core_seeds_keep_distance_and_narrow_grain_sizes():
    L = np.ones(2)
    n = 300
    d = 0.8 * np.sqrt(0.547 * 4 / np.pi / n)  # 0.8 of the RSA jamming distance
    seeds = random_seeds(2, L, n, 3, min_distance=d)
    dist = periodic_distances(seeds, seeds, L) + np.eye(n)
    assert dist.min() >= d
    cv = lambda v: v.std() / v.mean()  # noqa: E731
    assert cv(cell_measures(seeds, L).volumes) < 0.5 * cv(
        cell_measures(random_seeds(2, L, n, 3), L).volumes
    )
    with pytest.raises(GeometryError, match="too large for 300 seeds"):
        random_seeds(2, L, n, 3, min_distance=0.2)


def test_measures_closed_forms():
    L = np.ones(3)
    one = cell_measures([[0.3, 0.4, 0.5]], L)
    assert one.volumes[0] == pytest.approx(1.0) and one.boundary_area == 0.0
    # Two seeds on a line along x: the boundaries are the planes x = const; a power weight
    # difference Δw moves both by Δw / (2 · 0.5): grain 0 spans 0.5 + 2Δw.
    seeds = [[0.25, 0.5, 0.5], [0.75, 0.5, 0.5]]
    for dw in (0.0, 0.05, -0.1):
        m = cell_measures(seeds, L, [dw, 0.0])
        assert m.volumes == pytest.approx([0.5 + 2 * dw, 0.5 - 2 * dw], abs=1e-12)
        assert m.boundary_area == pytest.approx(2.0)
        assert m.projected_area == pytest.approx([2.0, 0.0, 0.0], abs=1e-12)
    m2 = cell_measures([[0.25, 0.3], [0.75, 0.3]], [1.0, 2.0], [0.05, 0.0])
    assert m2.volumes == pytest.approx([1.2, 0.8]) and m2.boundary_area == pytest.approx(4.0)
    # A weight large enough to swallow the other cell leaves it empty.
    m3 = cell_measures(seeds, L, [0.3, 0.0])
    assert m3.volumes == pytest.approx([1.0, 0.0], abs=1e-12) and m3.boundary_area == 0.0


@pytest.mark.parametrize("weighted", [False, True])
def test_measures_tile_the_box(weighted):
    L = np.array([1.0, 1.3, 0.8])
    seeds = random_seeds(3, L, 25, 9)
    w = np.random.default_rng(1).random(25) * 0.02 if weighted else None
    m = cell_measures(seeds, L, w)
    assert m.volumes.sum() == pytest.approx(np.prod(L), rel=1e-12)
    assert np.all(m.volumes >= 0)
    assert m.boundary_area <= m.projected_area.sum() <= np.sqrt(3) * m.boundary_area


@pytest.mark.parametrize(("dim", "n", "runs", "cv"), [(2, 2000, 3, 0.5292), (3, 500, 2, 0.4231)])
def test_poisson_voronoi_volume_scatter_matches_published(dim, n, runs, cv):
    """Poisson–Voronoi cells: var(A)/⟨A⟩² = 0.280 in 2D (Weaire et al. 1986), var(V)/⟨V⟩²
    = 0.179 in 3D (Kumar et al. 1992); the tolerance is ~3 standard errors of the sample."""
    L = np.ones(dim)
    v = np.concatenate([cell_measures(random_seeds(dim, L, n, s), L).volumes for s in range(runs)])
    assert v.mean() == pytest.approx(1.0 / n, rel=1e-12)
    assert v.std() / v.mean() == pytest.approx(cv, abs=0.03)


def observed_rate(h, errors):
    return np.polyfit(np.log(h), np.log(errors), 1)[0]


@pytest.mark.parametrize(
    ("dim", "n", "resolutions"), [(2, 20, (32, 64, 128, 256)), (3, 12, (8, 16, 32, 48))]
)
@pytest.mark.parametrize("weighted", [False, True])
def test_voxel_measures_converge_to_exact(dim, n, resolutions, weighted):
    """Stair-stepped grains: volumes converge at least at first order in the voxel size (in
    practice ~1.4 in 2D, ~2 in 3D: errors of opposite sign cancel), the projected boundary
    areas at about first order."""
    L = np.array([1.0, 1.3, 0.9][:dim])
    seeds = random_seeds(dim, L, n, 4)
    w = None
    if weighted:
        w = np.random.default_rng(4).random(n) * 0.3 * (np.prod(L) / n) ** (2 / dim)
    exact = cell_measures(seeds, L, w)
    ev, ea, h = [], [], []
    for r in resolutions:
        shape = tuple(round(r * x) for x in L)
        vm = voxel_measures(grain_labels(shape, L, seeds, w), L, n)
        ev.append(np.abs(vm.volumes - exact.volumes).sum() / np.prod(L))
        ea.append(np.abs(vm.projected_area - exact.projected_area).sum())
        h.append(1.0 / r)
    ea = np.array(ea) / exact.projected_area.sum()
    assert observed_rate(h, ev) > 1.0
    assert observed_rate(h, ea) > 0.75
    assert ev[-1] < 2e-3 and ea[-1] < 2e-2


def grain_volumes(rve, n):
    """Assembled volume of each grain from the per-cell grain ids (owned cells)."""
    mesh = rve.mesh
    tdim = mesh.topology.dim
    n_owned = mesh.topology.index_map(tdim).size_local
    DG0 = dolfinx.fem.functionspace(mesh, ("DG", 0))
    volumes = np.zeros(n)
    for g in range(n):
        indicator = dolfinx.fem.Function(DG0)
        indicator.x.array[:n_owned] = rve.cell_data[GRAIN][:n_owned] == g
        form = dolfinx.fem.form(indicator * ufl.dx(domain=mesh))
        volumes[g] = mesh.comm.allreduce(dolfinx.fem.assemble_scalar(form), op=MPI.SUM)
    return volumes


@pytest.mark.parametrize("comm", COMMS)
def test_polycrystal_cell_any_rank_count(comm):
    L = np.array([1.0, 0.8, 1.2])
    n = 6
    orientation = np.random.default_rng(0).random((n, 3, 3))
    rve = polycrystal_cell(comm, 3, L, n, (10, 8, 12), seed=5, grain_data={"R": orientation})
    labels = grain_labels((10, 8, 12), L, random_seeds(3, L, n, 5))  # serial reference
    assert rve.phases == {"grains": 1}
    data = {GRAIN: labels, "R": orientation[labels]}
    check_voxels(rve, labels, dict.fromkeys(range(n), 1), data)
    counts = np.bincount(labels.ravel(), minlength=n) * np.prod(L / (10, 8, 12))
    assert np.allclose(grain_volumes(rve, n), counts, rtol=1e-12)


def test_polycrystal_per_grain_phases_and_laguerre():
    L = np.ones(2)
    w = np.linspace(0.0, 0.02, 5)
    rve = polycrystal_cell(MPI.COMM_WORLD, 2, L, 5, 16, seed=1, weights=w, per_grain_phases=True)
    assert rve.phases == {f"grain{g}": g + 1 for g in range(5)}
    labels = grain_labels((16, 16), L, random_seeds(2, L, 5, 1), w)
    check_voxels(rve, labels, {g: g + 1 for g in range(5)}, {GRAIN: labels})
    given = np.array([[0.1, 0.1], [0.6, 0.6]])
    rve = polycrystal_cell(MPI.COMM_WORLD, 2, L, 2, 8, seed=0, seeds=given)
    check_voxels(rve, grain_labels((8, 8), L, given), {0: 1, 1: 1})


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"n_grains": 100, "resolution": 4}, "100 grains do not fit in 64 voxels"),
        ({"resolution": 0}, "resolution must be a positive integer"),
        ({"resolution": (4, 4)}, "resolution must be a positive integer or 3"),
        ({"n_grains": 0}, "n_grains must be a positive integer"),
        ({"lengths": [1.0, -1.0, 1.0]}, "lengths must be 3 positive numbers"),
        ({"weights": [0.0, 1.0]}, "weights must be 4 finite numbers"),
        ({"seeds": np.zeros((3, 3))}, r"seeds must have shape \(4, 3\)"),
        ({"grain_data": {"R": np.zeros((3, 3))}}, "one row per grain"),
        ({"min_distance": 0.9}, "too large for 4 seeds"),
    ],
)
def test_polycrystal_bad_input(kwargs, match):
    args = {"dim": 3, "lengths": [1.0, 1.0, 1.0], "n_grains": 4, "resolution": 6, "seed": 0}
    args.update(kwargs)
    with pytest.raises(GeometryError, match=match):
        polycrystal_cell(MPI.COMM_WORLD, **args)
