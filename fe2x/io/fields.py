"""RVE fields as VTX (ADIOS2) files for ParaView: correctors, localization, flux, plastic state."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from dolfinx import fem

from fe2x.fem.forms import mandel_strain
from fe2x.io.vtx import FieldFile


def write_unit_strain_fields(
    bc: str,
    fluctuations: Sequence[fem.Function],
    displacements: Sequence[fem.Function],
    directory: Path,
) -> list[Path]:
    """Write the correctors w_k and the localization A_k = ε(u_k) (Mandel) for each unit strain.

    ``<bc>_correctors.bp`` holds the vector fields ``w_<k>``; ``<bc>_localization.bp`` holds
    ``A_<k>``, the micro strain (Mandel vector) caused by the unit macro strain e_k, in the
    discontinuous space of the strain (degree one below the displacement).
    """
    directory.mkdir(parents=True, exist_ok=True)
    V = fluctuations[0].function_space
    mesh = V.mesh
    dim = mesh.topology.dim
    n = len(fluctuations)
    degree = V.element.basix_element.degree
    W = fem.functionspace(mesh, ("Discontinuous Lagrange", degree - 1, (n,)))
    localization = []
    for k, u in enumerate(displacements):
        A = fem.Function(W, name=f"A_{k}")
        A.interpolate(fem.Expression(mandel_strain(u, dim), W.element.interpolation_points))
        localization.append(A)
    paths = [
        directory / f"{bc}_correctors.bp",
        directory / f"{bc}_localization.bp",
    ]
    for path, functions in zip(paths, (fluctuations, localization), strict=True):
        with FieldFile(mesh.comm, path, functions) as writer:
            writer.write(0.0)
    return paths


def write_unit_gradient_fields(
    bc: str,
    correctors: Sequence[fem.Function],
    fluxes: Sequence[fem.Function],
    directory: Path,
) -> list[Path]:
    """Write the temperature correctors θ̃_k and the heat fluxes q_k for each unit gradient.

    ``<bc>_temperature_correctors.bp`` holds the scalar fields ``theta_tilde_<k>``;
    ``<bc>_flux.bp`` holds ``q_<k>`` = −k ∇θ_k, the micro heat flux caused by the unit macro
    gradient e_k (discontinuous vectors, from ``ConductionRVE.flux``).
    """
    directory.mkdir(parents=True, exist_ok=True)
    mesh = correctors[0].function_space.mesh
    for k, q in enumerate(fluxes):
        q.name = f"q_{k}"
    paths = [directory / f"{bc}_temperature_correctors.bp", directory / f"{bc}_flux.bp"]
    for path, functions in zip(paths, (correctors, fluxes), strict=True):
        with FieldFile(mesh.comm, path, functions) as writer:
            writer.write(0.0)
    return paths


def write_micro_fields(fields: dict[str, fem.Function], path: Path, t: float = 0.0) -> Path:
    """Write cell-wise micro fields (e.g. equivalent plastic strain, von Mises stress) to ``path``.

    The fields must share one function space (``NonlinearRVE.micro_fields()`` gives DG0 fields).
    """
    functions = list(fields.values())
    for name, f in fields.items():
        f.name = name
    path.parent.mkdir(parents=True, exist_ok=True)
    mesh = functions[0].function_space.mesh
    with FieldFile(mesh.comm, path, functions) as writer:
        writer.write(t)
    return path
