"""Train / validation partition: seeded and shuffled (no target, so no stratification)."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Partition:
    """Row positions (0-based, into the input table) of the train and validation sets."""

    train: np.ndarray
    validation: np.ndarray


def partition_rows(n_rows: int, validation_fraction: float, max_validation_rows: int, seed: int) -> Partition:
    """Shuffle ``n_rows`` positions with ``seed``; the validation set is a fraction, capped."""
    order = np.random.default_rng(seed).permutation(n_rows)
    n_validation = min(max(1, round(n_rows * validation_fraction)), max_validation_rows, n_rows - 1)
    return Partition(train=np.sort(order[n_validation:]), validation=np.sort(order[:n_validation]))


def default_k_values(n_train: int) -> list[int]:
    """Cluster counts to try when the user gives none: up to sqrt(n/2), at most 8 values."""
    ceiling = max(2, int(np.sqrt(n_train / 2)))
    return [k for k in (2, 3, 4, 5, 6, 8, 10, 12) if k <= ceiling]
