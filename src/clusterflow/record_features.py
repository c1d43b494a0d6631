"""The fitted featurizer applied to JSON records, with a fast path for a few rows at a time.

A featurizer reads a DataFrame, and building one (and the pandas work on its columns) costs
milliseconds per call: most of a single-row request. Here the fitted featurizer is read
block by block: where a block's first step can read plain values (its ``transform_values``,
or :func:`~clusterflow.modalities.numeric.numbers_from_values` for the numeric parser),
the values of every request of a batch go through it in one call (each value is read on its
own, so this is what each request alone would get), and the block's other fitted steps then
transform the stacked rows (the imputer and the scalers as their own arithmetic on
their learned statistics, without scikit-learn's input checks, which cost more than the
arithmetic on a few rows). Nothing is learned or copied here: a block without such a
reader, or a request its reader declines, is transformed by the fitted block itself on a
DataFrame of the records, so both paths give the features ``ClusterModel.transform`` gives
for the same rows.
"""
from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from sklearn.compose import ColumnTransformer
from sklearn.impute import SimpleImputer
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import FunctionTransformer, RobustScaler, StandardScaler

from .modalities.base import TotalVarianceScaler
from .modalities.numeric import SpreadScaler, numbers_from_values, to_numbers

Reader = Callable[[Sequence[Sequence]], "np.ndarray | None"]


class Rows:
    """One request's records: the values of each column the model reads, the problems found in reading them,
    and (built on demand) their table."""

    def __init__(self, records: list[dict[str, Any]], columns: dict[str, list], problems: list | None = None):
        self.records, self.columns, self.problems = records, columns, problems or []
        self._frame: pd.DataFrame | None = None

    def __len__(self) -> int:
        return len(self.records)

    def frame(self) -> pd.DataFrame:
        """The records as the table the featurizer reads (the table ``predict`` would be given)."""
        if self._frame is None:
            self._frame = pd.DataFrame.from_records(self.records, columns=list(self.columns))
        return self._frame

    def replace(self, frame: pd.DataFrame) -> None:
        """Use ``frame`` from now on (values rewritten by validation, e.g. image paths resolved to URIs)."""
        self._frame = frame
        self.columns = {c: frame[c].tolist() for c in self.columns}


def reader_of(step) -> Reader | None:
    """How ``step``, the first step of a block, reads plain values; None when it reads only frames."""
    if isinstance(step, FunctionTransformer) and step.func is to_numbers and not step.kw_args:
        return numbers_from_values
    return getattr(step, "transform_values", None)


def array_step(step) -> Callable[[np.ndarray], np.ndarray]:
    """``step.transform`` of a float array: for the imputer and the scalers, the arithmetic of their own
    ``transform`` on their learned statistics; any other step's own ``transform``."""
    if type(step) is SimpleImputer and _imputes_nan(step):
        statistics = step.statistics_.astype(float)
        flagged = step.indicator_.features_ if step.indicator_ is not None else None

        def impute(X):
            missing = np.isnan(X)
            imputed = np.where(missing, statistics, X)
            return imputed if flagged is None else np.hstack([imputed, missing[:, flagged]])
        return impute
    if type(step) is SpreadScaler:
        return _centre_and_scale(step.center_, step.scale_)
    if type(step) is RobustScaler:
        return _centre_and_scale(step.center_ if step.with_centering else None,
                                 step.scale_ if step.with_scaling else None)
    if type(step) is StandardScaler:
        return _centre_and_scale(step.mean_ if step.with_mean else None, step.scale_ if step.with_std else None)
    if type(step) is TotalVarianceScaler:
        return lambda X, scale=step.scale_: X * scale
    return step.transform


def _imputes_nan(imputer: SimpleImputer) -> bool:
    """Whether the imputer fills NaN with statistics that are all numbers (so no column is dropped)."""
    missing = imputer.missing_values
    statistics = np.asarray(imputer.statistics_)
    return (isinstance(missing, float) and np.isnan(missing) and statistics.dtype.kind == "f"
            and not np.isnan(statistics).any())


def _centre_and_scale(centre, scale) -> Callable[[np.ndarray], np.ndarray]:
    def transform(X):
        if centre is not None:
            X = X - centre
        return X if scale is None else X / scale
    return transform


def flat_steps(transformer) -> list:
    """The fitted steps of ``transformer``, nested pipelines unrolled, pass-throughs left out."""
    if isinstance(transformer, Pipeline):
        return [s for _, step in transformer.steps if step not in (None, "passthrough") for s in flat_steps(step)]
    return [transformer]


@dataclass
class Block:
    """One block of the featurizer: its fitted transformer, its columns and how it reads values."""

    transformer: Any
    columns: list[str]
    weight: float | None
    reader: Reader | None
    rest: list  # the fitted steps after the reader, each as a function of an array (see array_step)

    def transform(self, batch: list[Rows]) -> np.ndarray:
        if self.reader is None:
            X = self.transformer.transform(pd.concat([rows.frame()[self.columns] for rows in batch],
                                                     ignore_index=True))
        else:
            # A reader reads each value on its own: all requests in one call, unless one has a value it declines.
            X = self.reader([[v for rows in batch for v in rows.columns[c]] for c in self.columns])
            X = self._rest(X) if X is not None else np.vstack(self._each(batch))
        return X if self.weight is None else X * self.weight

    def _rest(self, X: np.ndarray) -> np.ndarray:
        for step in self.rest:
            X = step(X)
        return X

    def _each(self, batch: list[Rows]) -> list[np.ndarray]:
        """Each request's rows: read where the reader takes its values, else by the fitted block on its table."""
        read = [self.reader([rows.columns[c] for c in self.columns]) for rows in batch]
        accepted = [i for i, x in enumerate(read) if x is not None]
        parts = [None if x is not None else self.transformer.transform(rows.frame()[self.columns])
                 for rows, x in zip(batch, read)]
        if accepted:
            X = self._rest(np.vstack([read[i] for i in accepted]))
            for i, part in zip(accepted, np.split(X, np.cumsum([len(batch[i]) for i in accepted])[:-1])):
                parts[i] = part
        return parts


class RecordFeaturizer:
    """A fitted featurizer (the ColumnTransformer of :func:`clusterflow.blueprint.make_featurizer`) for records.

    ``transform(batch)`` returns the feature rows of every request of ``batch``, in order.
    ``fast`` says whether every block reads values (no DataFrame is built unless a request's
    values need one); a featurizer of another shape is applied whole to the records' tables.
    """

    def __init__(self, featurizer):
        self.featurizer = featurizer
        self.blocks = _blocks(featurizer)

    @property
    def fast(self) -> bool:
        return self.blocks is not None and all(block.reader is not None for block in self.blocks)

    def transform(self, batch: list[Rows]) -> np.ndarray:
        if self.blocks is None:
            return self.featurizer.transform(pd.concat([rows.frame() for rows in batch], ignore_index=True))
        return np.hstack([block.transform(batch) for block in self.blocks])


def _blocks(featurizer) -> list[Block] | None:
    """The blocks of a fitted ColumnTransformer of named columns and dense output; None for any other shape."""
    if not isinstance(featurizer, ColumnTransformer) or getattr(featurizer, "sparse_output_", True):
        return None
    weights = featurizer.transformer_weights or {}
    blocks = []
    for name, transformer, columns in featurizer.transformers_:
        if transformer == "drop" or len(columns) == 0:
            continue
        if transformer == "passthrough" or not all(isinstance(c, str) for c in columns):
            return None
        steps = flat_steps(transformer)
        reader = reader_of(steps[0]) if steps else None
        blocks.append(Block(transformer, list(columns), weights.get(name), reader, [array_step(s) for s in steps[1:]]))
    return blocks
