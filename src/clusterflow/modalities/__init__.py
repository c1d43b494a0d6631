"""One module per modality: the featurizer (a scikit-learn transformer) for its role(s).

``MODALITIES`` maps each modality (a block of the feature matrix, and a name for
``--weights``) to the roles it featurizes and the factory of its featurizer.
"""
from __future__ import annotations

from .base import Modality
from .categorical import CATEGORICAL
from .datetime import DATETIME
from .geo import GEO
from .image import IMAGE
from .numeric import NUMERIC
from .text import TEXT

MODALITIES: dict[str, Modality] = {m.name: m for m in (NUMERIC, CATEGORICAL, DATETIME, TEXT, IMAGE, GEO)}


def modality_of_role(role: str) -> Modality:
    for modality in MODALITIES.values():
        if role in modality.roles:
            return modality
    raise KeyError(f"no featurizer for role {role!r} yet")


__all__ = ["MODALITIES", "Modality", "modality_of_role"]
