"""Generic UFL/DOLFINx pieces that the micro and macro problems share.

Strain measures, quadrature rules and spaces, and the evaluator that binds constitutive laws to
quadrature points.
"""

from fe2x.fem.forms import mandel_strain, stiffness_quadrature_degree
from fe2x.fem.quadrature import QuadratureRule, tag_of_cells
from fe2x.fem.quadrature_laws import QuadratureLaws

__all__ = [
    "QuadratureLaws",
    "QuadratureRule",
    "mandel_strain",
    "stiffness_quadrature_degree",
    "tag_of_cells",
]
