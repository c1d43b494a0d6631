"""The input table's contract: the pandera schema built from the column roles.

Declared in the core (``clusterflow.input_schema``), so the library validates on its own;
this module is where flows, deployments and readers of the layout find it.
"""
from clusterflow.input_schema import HINTS, MIN_ROWS, ROLE_CHECKS, input_schema

__all__ = ["HINTS", "MIN_ROWS", "ROLE_CHECKS", "input_schema"]
