"""The published model: featurizer + reducer + clusterer, and the input schema it expects."""
from __future__ import annotations

import io
import json

import joblib
import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator, ClusterMixin, TransformerMixin, clone
from sklearn.utils._param_validation import HasMethods, StrOptions
from sklearn.utils.validation import check_is_fitted, validate_data

from .algorithms import Clusterer
from .blueprint import join, make_featurizer, weigh_blocks_by_structure
from .errors import InputValidationError, IntegrityError, Problem, RunNotFoundError
from .roles import RoleDecision, id_column, infer_roles
from .run_folder import LABELS_FILE, MANIFEST, MODEL_FILE, SCHEMA_FILE, Manifest, RunFolder, model_file
from .validation import validate_table

ROW_ID = "row_id"


class ClusterModel(TransformerMixin, ClusterMixin, BaseEstimator):
    """A clustering model for raw tables: featurizer -> reducer -> clusterer.

    ``predict(frame)`` returns each row's cluster, as scikit-learn's clusterers do;
    ``assign(frame)`` returns the assignments frame (id, cluster, probabilities).

    Parameters
    ----------
    featurizer : ColumnTransformer, optional
        Per-modality featurizers (see :func:`clusterflow.blueprint.make_featurizer`), used as
        given (a fitted run's featurizer keeps its blocks' weights); default: the one made for
        the columns' roles, its blocks weighted by their cluster structure
        (:func:`clusterflow.blueprint.weigh_blocks_by_structure`).
    reducer : estimator or "passthrough", default="passthrough"
        Dimension reduction after featurization.
    clusterer : Clusterer, optional
        The clustering algorithm; default: k-means with 8 clusters.
    roles : dict of column -> role, optional
        Roles that override inference; the fitted roles are ``roles_``.
    id_column : str, optional
        Carried from input to output; default: the first id column of the roles, else
        rows are numbered as ``row_id``.
    labels : dict of int -> int, optional
        The cluster id users see for each of the clusterer's labels (noise stays -1);
        reclustering sets it so a cluster that persists keeps its id. None: the
        clusterer's own labels.

    Attributes
    ----------
    pipeline_ : Pipeline
        The fitted featurizer, reducer and clusterer.
    roles_ : dict of column -> role
        The input columns the model expects and their roles (new data is validated against them).
    id_column_ : str or None
    labels_ : ndarray of shape (n_samples,)
        The cluster of each row ``fit`` saw (set by ``fit``, not by a run's published models).

    Examples
    --------
    >>> import clusterflow
    >>> model = clusterflow.load_model("clusterflow-runs/customers-20261126/")  # doctest: +SKIP
    >>> model.predict(new_customers)[:5]  # doctest: +SKIP
    array([2, 0, 0, 1, 2])
    >>> model.assign(new_customers).head()  # doctest: +SKIP
    """

    _parameter_constraints: dict = {
        "featurizer": [HasMethods(["fit_transform", "transform"]), None],
        "reducer": [HasMethods(["fit_transform", "transform"]), StrOptions({"passthrough"})],
        "clusterer": [HasMethods(["fit", "predict", "predict_proba"]), None],
        "roles": [dict, None],
        "id_column": [str, None],
        "labels": [dict, None],
    }

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
        model.roles_, model.id_column_ = dict(roles), id_column
        return model

    def fit(self, X, y=None):
        """Fit featurizer, reducer and clusterer on ``X`` (a DataFrame, or a numeric array) in turn."""
        self._validate_params()
        frame, numeric = as_frame(self, X, reset=True)
        overrides = self.roles or ({c: "numeric" for c in frame.columns} if numeric else None)
        decisions = infer_roles(frame, overrides)
        validate_table(frame, decisions)
        featurizer = make_featurizer(decisions) if self.featurizer is None else clone(self.featurizer)
        reducer = self.reducer if self.reducer == "passthrough" else clone(self.reducer)
        clusterer = Clusterer("kmeans", 8) if self.clusterer is None else clone(self.clusterer)
        Z = featurizer.fit_transform(frame)
        if self.featurizer is None:
            Z, _ = weigh_blocks_by_structure(featurizer, Z, seed=0)
        if reducer != "passthrough":
            Z = reducer.fit_transform(Z)
        self.pipeline_ = join(featurizer, reducer, clusterer.fit(Z))
        self.roles_ = {d.column: d.role for d in decisions}
        self.id_column_ = self.id_column or id_column(decisions)
        self.labels_ = self.labels_of(Z)
        return self

    @property
    def clusters_(self) -> np.ndarray:
        return relabel(self.pipeline_[-1].clusters_, self.labels)

    def transform(self, X) -> np.ndarray:
        """The reduced feature matrix the clusterer sees."""
        check_is_fitted(self)
        frame = as_frame(self, X, reset=False)[0]
        self._check_input(frame)
        return self.pipeline_[:-1].transform(frame)

    def predict(self, X) -> np.ndarray:
        """The cluster of each row (-1 = noise)."""
        return self.labels_of(self.transform(X))

    def predict_proba(self, X) -> np.ndarray:
        """Membership probability of each row in each cluster of ``clusters_``."""
        Z = self.transform(X)
        return self.pipeline_[-1].predict_proba(Z)

    def assign(self, X) -> pd.DataFrame:
        """Assignments: the id column (or ``row_id``), ``cluster`` (-1 = noise), ``p_<cluster>``."""
        frame = as_frame(self, X, reset=False)[0]
        return self.assignments(frame, self.transform(frame))

    def labels_of(self, Z: np.ndarray) -> np.ndarray:
        """The cluster of each row whose reduced features are ``Z``."""
        return relabel(self.pipeline_[-1].predict(Z), self.labels)

    def assignments(self, X: pd.DataFrame, Z: np.ndarray, row_offset: int = 0) -> pd.DataFrame:
        """The assignments frame for rows ``X`` whose reduced features are ``Z``."""
        clusterer = self.pipeline_[-1]
        ids = X[self.id_column_].to_numpy() if self.id_column_ else np.arange(row_offset, row_offset + len(X))
        frame = pd.DataFrame({self.id_column_ or ROW_ID: ids, "cluster": self.labels_of(Z)})
        proba = clusterer.predict_proba(Z)
        for j, cluster in enumerate(self.clusters_):
            frame[f"p_{int(cluster)}"] = proba[:, j]
        return frame

    def _check_input(self, X: pd.DataFrame) -> None:
        missing = [c for c, role in self.roles_.items() if role != "ignore" and c not in X.columns]
        if missing:
            raise InputValidationError([
                Problem(rule="column is missing", column=c, hint="the model was trained with it; add it to the table")
                for c in missing
            ])
        validate_table(X, [RoleDecision(c, r, "") for c, r in self.roles_.items() if r != "ignore"], min_rows=None)

    def __setstate__(self, state: dict) -> None:
        # models published before roles_ existed kept the fitted roles in the `roles` parameter
        state.setdefault("roles_", state.get("roles"))
        state.setdefault("id_column_", state.get("id_column"))
        super().__setstate__(state)

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.allow_nan = True  # missing values are imputed
        return tags

    def to_files(self) -> dict[str, bytes]:
        """The model folder's files: the pickled pipeline and the input schema (JSON)."""
        buffer = io.BytesIO()
        joblib.dump(self, buffer)
        schema = {"roles": self.roles_, "id_column": self.id_column_,
                  "clusters": [int(c) for c in self.clusters_], "algorithm": self.pipeline_[-1].algorithm}
        return {MODEL_FILE: buffer.getvalue(), SCHEMA_FILE: json.dumps(schema, indent=2).encode()}


def as_frame(estimator, X, *, reset: bool) -> tuple[pd.DataFrame, bool]:
    """``X`` as a DataFrame, and whether it came as a numeric array (its columns then named x0, x1, ...).

    Records ``n_features_in_`` (and a frame's ``feature_names_in_``) when ``reset``, as
    scikit-learn's estimators do, and checks an array's width against it otherwise.
    """
    if isinstance(X, pd.DataFrame):
        if reset:
            estimator.n_features_in_ = X.shape[1]
            estimator.feature_names_in_ = np.asarray(X.columns, dtype=object)
        return X, False
    X = validate_data(estimator, X, reset=reset, ensure_all_finite="allow-nan")
    return pd.DataFrame(X, columns=[f"x{i}" for i in range(X.shape[1])]), True


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
    """Load a published model, verified: a model folder (``RUN/models/<id>``) or a run (its top model).

    The run's manifest must list the model, and each of its files must match the SHA-256
    the manifest records (and, with ``CLUSTERFLOW_SIGNING_KEY`` set, the manifest its
    signature) before anything is unpickled; else :class:`IntegrityError` names the file.
    A ``labels.json`` next to the model (written when a recluster matched its clusters to
    an earlier model's) sets the cluster ids it reports.
    """
    folder, manifest, model_id = _published_run_of(uri, storage_options)
    return load_published_model(folder, manifest, model_id)


def check_model(uri: str, storage_options: dict | None = None) -> None:
    """Check a published model as :func:`load_model` does (listed, every file matching), without unpickling it."""
    folder, manifest, model_id = _published_run_of(uri, storage_options)
    verified_model_files(folder, manifest, model_id)


def _published_run_of(uri: str, storage_options: dict | None) -> tuple[RunFolder, Manifest, str]:
    run_uri, model_id = locate_model(uri, storage_options)
    folder = RunFolder(run_uri, storage_options)
    if not folder.is_published():
        raise RunNotFoundError(f"no model at {uri}: expected a published run folder or RUN/models/<model_id>")
    manifest = folder.manifest()
    return folder, manifest, model_id or manifest.top_model


def locate_model(uri: str, storage_options: dict | None = None) -> tuple[str, str | None]:
    """The run folder holding ``uri`` and the model it names (None: a run folder, so its top model)."""
    stripped = uri.rstrip("/")
    parent, _, model_id = stripped.rpartition("/")
    run, _, models = parent.rpartition("/") if "/" in parent else ("", "", parent)
    if models == "models" and not RunFolder(stripped, storage_options).exists(MANIFEST):
        return run or ".", model_id
    return stripped, None


def verified_model_files(folder: RunFolder, manifest: Manifest, model_id: str) -> dict[str, bytes]:
    """Every file ``manifest`` lists in the model's folder, each checked against its SHA-256 (by name in the folder)."""
    if model_id not in manifest.models:
        raise IntegrityError(f"{folder.url(model_file(model_id))} is not a model of the run: {folder.url(MANIFEST)} "
                             f"does not list {model_id!r} (its models: {', '.join(manifest.models)}); files left by "
                             "an interrupted run are never loaded")
    prefix = model_file(model_id, "")
    files = {name.removeprefix(prefix): folder.read(name, manifest) for name in manifest.files
             if name.startswith(prefix)}
    if MODEL_FILE not in files:
        raise IntegrityError(f"{folder.url(MANIFEST)} lists model {model_id!r} but not its {MODEL_FILE}")
    return files


def load_published_model(folder: RunFolder, manifest: Manifest, model_id: str) -> ClusterModel:
    """The model ``model_id`` of the run in ``folder``, every file of it checked against ``manifest`` before
    unpickling."""
    files = verified_model_files(folder, manifest, model_id)
    model = joblib.load(io.BytesIO(files[MODEL_FILE]))
    if LABELS_FILE in files:
        labels = json.loads(files[LABELS_FILE])["labels"]
        model.set_params(labels={int(raw): int(stable) for raw, stable in labels.items()})
    return model
