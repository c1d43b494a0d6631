"""One module per modality, each declaring everything about its kind of column once.

A :class:`Modality` (see :mod:`.base`) names its roles and gives its featurizer, its
role inference rules, the checks its columns must pass, its insight profile and its
report cell. ``MODALITIES`` is the registry, in the order their rules are tried;
:func:`register` adds one at run time.
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


def register(modality: Modality) -> Modality:
    """Add ``modality`` to the registry (after the others: its rules are tried last among modalities')."""
    taken = {role for m in MODALITIES.values() if m.name != modality.name for role in m.roles}
    clashing = sorted(taken & set(modality.roles))
    if clashing:
        raise ValueError(f"roles {clashing} already belong to another modality")
    MODALITIES[modality.name] = modality
    return modality


def unregister(name: str) -> None:
    """Remove a modality from the registry."""
    MODALITIES.pop(name)


def modality_of_role(role: str) -> Modality:
    for modality in MODALITIES.values():
        if role in modality.roles:
            return modality
    raise KeyError(f"no featurizer for role {role!r} yet")


def modality_of_kind(kind: str) -> Modality | None:
    """The modality whose insight profiles are of ``kind`` (profiles name their modality's kind)."""
    return MODALITIES.get(kind)


__all__ = ["MODALITIES", "Modality", "modality_of_kind", "modality_of_role", "register", "unregister"]
