"""The jobs behind the command line: a validated config in, result files out."""

from fe2x.jobs.fe2 import REQUEUE_STATUS, Interrupted, run_fe2
from fe2x.jobs.homogenize import run_homogenize
from fe2x.jobs.rve_path import run_rve_path

__all__ = ["REQUEUE_STATUS", "Interrupted", "run_fe2", "run_homogenize", "run_rve_path"]
