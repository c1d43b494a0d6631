"""The run parameters' contract, as the CLI, the flows and the deployments see it.

Declared once in the core (``clusterflow.parameters``); the dependency runs one way,
from ``schemas`` to ``clusterflow``.
"""
from clusterflow.parameters import (MAX_K, MAX_K_VALUES, MIN_K, MODES, TEXT_FEATURIZERS, RunParameters,
                                    check_k_values, k_problems, parse_parameters, run_field)

__all__ = ["MAX_K", "MAX_K_VALUES", "MIN_K", "MODES", "TEXT_FEATURIZERS", "RunParameters", "check_k_values",
           "k_problems", "parse_parameters", "run_field"]
