"""The input table's contract: the pandera schema built from the column roles.

Declared in the core (``clusterflow.input_schema``, each modality's checks with it), so
the library validates on its own; this module is where flows, deployments and readers
of the layout find it.
"""
from clusterflow.input_schema import MIN_ROWS, column_checks, hints, input_schema

__all__ = ["MIN_ROWS", "column_checks", "hints", "input_schema"]
