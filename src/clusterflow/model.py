"""The published model: featurizer + reducer + clusterer, and the input schema it expects."""
from __future__ import annotations

import io
import json
import posixpath

import fsspec
import joblib
import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator, ClusterMixin, clone
from sklearn.utils.validation import check_is_fitted

from .blueprint import join
from .errors import InputValidationError, Problem, RunNotFoundError
from .roles import RoleDecision, infer_roles
from .storage import MANIFEST, RunFolder
from .validation import validate_table

MODEL_FILE, SCHEMA_FILE, LABELS_FILE = "model.joblib", "schema.json", "labels.json"
ROW_ID = "row_id"


class ClusterModel(ClusterMixin, BaseEstimator):
    """A clustering model for raw tables: ``predict(frame)`` returns the assignments frame.

    Parameters
    ----------
    featurizer : ColumnTransformer
        Per-modality featurizers (see :func:`clusterflow.blueprint.make_featurizer`).
    reducer : estimator or "passthrough"
        Dimension reduction after featurization.
    clusterer : Clusterer
        The clustering algorithm.
    roles : dict of column -> role
        The input columns the model expects and their roles (used to validate new data).
    id_column : str or None
        Carried from input to output; None numbers rows as ``row_id``.
    labels : dict of int -> int or None
        The cluster id users see for each of the clusterer's labels (noise stays -1);
        reclustering sets it so a cluster that persists keeps its id. None: the
        clusterer's own labels.

    Examples
    --------
    >>> import clusterflow
    >>> model = clusterflow.load_model("clusterflow-runs/customers-20261126/")  # doctest: +SKIP
    >>> model.predict(new_customers).head()  # doctest: +SKIP
    """

    def __init__(self, featurizer=None, reducer="passthrough", clusterer=None, roles=None, id_column=None,
                 labels=None):
        self.featurizer = featurizer
        self.reducer = reducer
        self.clusterer = clusterer
        self.roles = roles
        self.id_column = id_column
        self.labels = labels

    @classmethod
    def from_fitted(cls, featurizer, reducer, clusterer, roles: dict[str, str], id_column: str | None) -> "ClusterModel":
        """Join pieces that are already fitted (how a run builds its models)."""
        model = cls(featurizer, reducer, clusterer, roles, id_column)
        model.pipeline_ = join(featurizer, reducer, clusterer)
        return model

    def fit(self, X: pd.DataFrame, y=None):
        """Fit featurizer, reducer and clusterer on ``X`` in turn."""
        roles = self.roles or {d.column: d.role for d in infer_roles(X)}
        validate_table(X, [RoleDecision(c, r, "") for c, r in roles.items()])
        featurizer = clone(self.featurizer)
        reducer = self.reducer if self.reducer == "passthrough" else clone(self.reducer)
        Z = featurizer.fit_transform(X)
        if reducer != "passthrough":
            Z = reducer.fit_transform(Z)
        self.pipeline_ = join(featurizer, reducer, clone(self.clusterer).fit(Z))
        return self

    @property
    def clusters_(self) -> np.ndarray:
        return relabel(self.pipeline_[-1].clusters_, self.labels)

    def transform(self, X: pd.DataFrame) -> np.ndarray:
        """The reduced feature matrix the clusterer sees."""
        check_is_fitted(self)
        self._check_input(X)
        return self.pipeline_[:-1].transform(X)

    def predict_proba(self, X: pd.DataFrame) -> np.ndarray:
        return self.pipeline_[-1].predict_proba(self.transform(X))

    def predict(self, X: pd.DataFrame) -> pd.DataFrame:
        """Assignments: the id column (or ``row_id``), ``cluster`` (-1 = noise), ``p_<cluster>``."""
        Z = self.transform(X)
        return self.assignments(X, Z)

    def assignments(self, X: pd.DataFrame, Z: np.ndarray, row_offset: int = 0) -> pd.DataFrame:
        """The assignments frame for rows ``X`` whose reduced features are ``Z``."""
        clusterer = self.pipeline_[-1]
        ids = X[self.id_column].to_numpy() if self.id_column else np.arange(row_offset, row_offset + len(X))
        frame = pd.DataFrame({self.id_column or ROW_ID: ids, "cluster": relabel(clusterer.predict(Z), self.labels)})
        proba = clusterer.predict_proba(Z)
        for j, cluster in enumerate(self.clusters_):
            frame[f"p_{int(cluster)}"] = proba[:, j]
        return frame

    def _check_input(self, X: pd.DataFrame) -> None:
        missing = [c for c, role in self.roles.items() if role != "ignore" and c not in X.columns]
        if missing:
            raise InputValidationError([
                Problem(rule="column is missing", column=c, hint="the model was trained with it; add it to the table")
                for c in missing
            ])
        validate_table(X, [RoleDecision(c, r, "") for c, r in self.roles.items() if r != "ignore"], min_rows=None)

    def to_files(self) -> dict[str, bytes]:
        """The model folder's files: the pickled pipeline and the input schema (JSON)."""
        buffer = io.BytesIO()
        joblib.dump(self, buffer)
        schema = {"roles": self.roles, "id_column": self.id_column,
                  "clusters": [int(c) for c in self.clusters_], "algorithm": self.pipeline_[-1].algorithm}
        return {MODEL_FILE: buffer.getvalue(), SCHEMA_FILE: json.dumps(schema, indent=2).encode()}


def relabel(labels: np.ndarray, mapping: dict[int, int] | None) -> np.ndarray:
    """Map cluster labels through ``mapping``; labels it does not name (noise) stay as they are."""
    labels = np.asarray(labels).astype(int)
    if not mapping:
        return labels
    out = labels.copy()
    for raw, stable in mapping.items():
        out[labels == int(raw)] = int(stable)
    return out


def labels_file(mapping: dict[int, int]) -> bytes:
    """The ``labels.json`` of a model folder: its clusterer's labels -> the ids users see."""
    return json.dumps({"labels": {str(raw): int(stable) for raw, stable in mapping.items()}}, indent=2).encode()


def load_model(uri: str, storage_options: dict | None = None) -> ClusterModel:
    """Load a published model: a model folder (``RUN/models/<id>``) or a run (its top model).

    A ``labels.json`` next to the model (written when a recluster matched its
    clusters to an earlier model's) sets the cluster ids it reports.

    Models are pickles: load only runs you or your pipelines published.
    """
    folder = RunFolder(uri, storage_options)
    if folder.exists(MANIFEST):
        manifest = folder.manifest()
        folder = RunFolder(folder.url(posixpath.join("models", manifest["top_model"])), storage_options)
    if not folder.exists(MODEL_FILE):
        raise RunNotFoundError(f"no model at {uri}: expected a run folder or RUN/models/<model_id>")
    run_uri = folder.uri.rstrip("/").rsplit("/", 2)[0]
    RunFolder(run_uri, storage_options).manifest()  # a model of an unfinished or failed run is not published
    with fsspec.open(folder.url(MODEL_FILE), "rb", **(storage_options or {})) as f:
        model = joblib.load(f)
    if folder.exists(LABELS_FILE):
        labels = json.loads(folder.get(LABELS_FILE))["labels"]
        model.set_params(labels={int(raw): int(stable) for raw, stable in labels.items()})
    return model
