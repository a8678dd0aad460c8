"""TOML pieces the FE² tests build their configs from."""

#: A block [0, 2] × [0, 1] pulled along x on its right edge (``ux`` given as ``{ux}``), held
#: at ux = 0 on the left and uy = 0 at the bottom.
PULLED_BLOCK = """
[macro]
shape = "block"
dim = 2
lengths = [2.0, 1.0]
mesh_size = 0.5

[[boundary]]
name = "left"
ux = 0.0
[[boundary]]
name = "bottom"
uy = 0.0
[[boundary]]
name = "right"
ux = {ux}
"""

#: The RVE ``composite``: a 2D laminate of an elastoplastic soft phase (J2, linear hardening)
#: and an elastic hard one, P1, meshed with ``{mesh_size}``.
J2_LAMINATE_RVE = """
[micro.composite]
[micro.composite.cell]
type = "laminate"
dim = 2
fractions = [0.5, 0.5]
phases = ["soft", "hard"]
mesh_size = {mesh_size}
geometry_order = 1
[micro.composite.materials.soft]
model = "j2"
E = 3.0e9
nu = 0.3
sigma_y = 30.0e6
H = 300.0e6
[micro.composite.materials.hard]
E = 70.0e9
nu = 0.2
[micro.composite.rve]
degree = 1
"""
