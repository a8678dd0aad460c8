"""Tests of random sequential addition and of periodic point pairing (pure numpy, no MPI)."""

import time

import numpy as np
import pytest

from fe2x.errors import GeometryError
from fe2x.geometry.packing import ball_volume, random_sequential_addition
from fe2x.geometry.periodicity import on_boundary, periodic_images


def _brute_min_distance(centres, lengths):
    """Minimum-image distance by trying all 3**dim translates (independent of the code)."""
    best = np.inf
    dim = centres.shape[1]
    shifts = np.array(np.meshgrid(*[[-1, 0, 1]] * dim, indexing="ij")).reshape(dim, -1).T
    for i in range(len(centres)):
        for j in range(i + 1, len(centres)):
            d = centres[i] - centres[j] + shifts * lengths
            best = min(best, np.sqrt((d**2).sum(axis=1)).min())
    return best


@pytest.mark.parametrize("dim", [2, 3])
def test_rsa_no_overlap_and_volume_fraction(dim):
    L = np.array([1.0, 1.3, 0.9][:dim])
    gap = 0.02
    centres, r = random_sequential_addition(dim, L, 0.3, gap, seed=4, number=10)
    assert centres.shape == (10, dim)
    assert np.all((centres >= 0) & (centres < L))
    assert _brute_min_distance(centres, L) >= 2 * r + gap - 1e-12
    assert 10 * ball_volume(dim, r) / np.prod(L) == pytest.approx(0.3, rel=1e-12)
    # Surfaces stay clear of the faces by the margin gap / 2.
    d = np.minimum(centres, L - centres)
    assert np.all(np.abs(d - r) >= gap / 2)


def test_rsa_radius_gives_rounded_number():
    centres, r = random_sequential_addition(2, [1.0, 1.0], 0.2, 0.01, seed=0, radius=0.08)
    assert r == 0.08
    assert len(centres) == round(0.2 / (np.pi * 0.08**2))


def test_rsa_reproducible_from_seed():
    a, _ = random_sequential_addition(3, [1, 1, 1], 0.2, 0.02, seed=7, number=6)
    b, _ = random_sequential_addition(3, [1, 1, 1], 0.2, 0.02, seed=7, number=6)
    c, _ = random_sequential_addition(3, [1, 1, 1], 0.2, 0.02, seed=8, number=6)
    assert np.array_equal(a, b)
    assert not np.allclose(a, c)


def test_rsa_unreachable_target():
    with pytest.raises(
        GeometryError, match=r"reached vf .* of requested 0\.6.*lower volume_fraction"
    ):
        random_sequential_addition(2, [1, 1], 0.6, 0.01, seed=0, number=40, max_attempts=20_000)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"volume_fraction": 0.0, "number": 3}, "volume_fraction must be in"),
        ({"volume_fraction": 1.0, "number": 3}, "volume_fraction must be in"),
        ({"volume_fraction": 0.3}, "exactly one of radius or number"),
        ({"volume_fraction": 0.3, "number": 3, "radius": 0.1}, "exactly one of radius or number"),
        ({"volume_fraction": 0.3, "radius": 0.6}, "too large"),
        ({"volume_fraction": 0.3, "number": 0}, "positive integer"),
        ({"volume_fraction": 0.3, "number": 2, "min_gap": -1.0}, "min_gap must be"),
    ],
)
def test_rsa_bad_input(kwargs, match):
    args = {"min_gap": 0.01, "seed": 0} | kwargs
    with pytest.raises(GeometryError, match=match):
        random_sequential_addition(2, [1.0, 1.0], **args)


def test_periodic_images_corners_map_to_final_master():
    g = np.linspace(0.0, 2.0, 5)
    x = np.stack(np.meshgrid(g, g, g, indexing="ij"), -1).reshape(-1, 3)
    x = x[np.random.default_rng(1).permutation(len(x))]
    m = periodic_images(x, [0, 0, 0], [2, 2, 2])
    expected = np.where(np.isclose(x, 2.0), 0.0, x)
    assert np.allclose(x[m], expected)
    assert np.all(m[m] == m)  # masters are their own masters: no chains
    corner = np.flatnonzero(np.all(np.isclose(x, 2.0), axis=1))[0]
    assert np.allclose(x[m[corner]], 0.0)


def test_periodic_images_is_fast():
    n = 47
    g = np.linspace(0.0, 1.0, n)
    x = np.stack(np.meshgrid(g, g, g, indexing="ij"), -1).reshape(-1, 3)
    t = time.perf_counter()
    periodic_images(x, [0, 0, 0], [1, 1, 1])
    assert time.perf_counter() - t < 1.0


def test_periodic_images_reports_missing_partner():
    x = np.array([[0.0, 0.0], [1.0, 0.0], [0.0, 0.3], [1.0, 0.31], [1.0, 0.6], [0.5, 0.5]])
    with pytest.raises(GeometryError, match=r"\(1, 0\.31\) on face x=1 .*\(2 of 3 upper-face"):
        periodic_images(x, [0, 0], [1, 1])


def test_on_boundary():
    x = np.array([[0.0, 0.5], [0.5, 0.5], [0.5, 2.0], [1.0, 1.0]])
    assert on_boundary(x, [0, 0], [1, 2]).tolist() == [True, False, True, True]
