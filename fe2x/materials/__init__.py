"""Constitutive laws on numpy arrays: linear elasticity, Mandel notation and classical bounds."""

from fe2x.materials.bounds import hashin_shtrikman, isotropic_projection, reuss_bound, voigt_bound
from fe2x.materials.elastic import AnisotropicElastic, IsotropicElastic, elastic_material
from fe2x.materials.mandel import (
    MANDEL_2D,
    MANDEL_3D,
    PLANE_STRAIN_ROWS,
    bulk_shear,
    component_labels,
    isotropic_stiffness,
    lame_parameters,
    mandel_to_tensor,
    mandel_to_tensor4,
    mandel_weights,
    n_mandel,
    plane_strain,
    rotation_mandel,
    tensor4_to_mandel,
    tensor_to_mandel,
)

__all__ = [
    "MANDEL_2D",
    "MANDEL_3D",
    "PLANE_STRAIN_ROWS",
    "AnisotropicElastic",
    "IsotropicElastic",
    "bulk_shear",
    "component_labels",
    "elastic_material",
    "hashin_shtrikman",
    "isotropic_projection",
    "isotropic_stiffness",
    "lame_parameters",
    "mandel_to_tensor",
    "mandel_to_tensor4",
    "mandel_weights",
    "n_mandel",
    "plane_strain",
    "reuss_bound",
    "rotation_mandel",
    "tensor4_to_mandel",
    "tensor_to_mandel",
    "voigt_bound",
]
