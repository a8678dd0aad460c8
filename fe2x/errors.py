"""Exceptions for user errors: the CLI prints their message on one line and exits non-zero."""


class Fe2xError(Exception):
    """A user error (bad input, impossible geometry, non-physical constants, ...)."""


class ConfigError(Fe2xError):
    """A config file is malformed or names an unknown key or a wrong value."""


class GeometryError(Fe2xError):
    """A cell cannot be built or a mesh file is unusable (e.g. not periodic)."""


class MaterialError(Fe2xError):
    """Material constants are not physical."""


class SolverError(Fe2xError):
    """A solver did not converge."""
