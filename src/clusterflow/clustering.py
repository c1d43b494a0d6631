"""``Clustering``: the whole pipeline on a DataFrame, in this process, as a scikit-learn estimator.

It runs the same stages as the ``cluster`` flow (:mod:`clusterflow.runs`: roles and
validation, partition, featurization, every candidate, the leaderboard), with no
Prefect and, unless a Dask client is given, no Dask cluster: candidates are fitted in
joblib threads. :meth:`Clustering.save` writes the standard run folder.
"""
from __future__ import annotations

import hashlib
import numbers
import os
import tempfile
import types
import typing
from dataclasses import replace

import fsspec
import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator, ClusterMixin
from sklearn.utils._param_validation import HasMethods, Interval, StrOptions
from sklearn.utils.validation import check_is_fitted

from . import report as reporting
from . import runs
from .model import as_frame
from .parameters import RunParameters, parse_parameters
from .run_folder import INPUT_FILE, RunFolder
from .storage import content_hash, frame_to_parquet_bytes


def _constraints_of(model: type, names) -> dict[str, list]:
    """scikit-learn parameter constraints of ``names``, read from the run parameters' declared fields.

    None is always allowed: it stands for the field's default.
    """
    constraints = {}
    for name in names:
        field = model.model_fields[name]
        args = typing.get_args(field.annotation)
        union = typing.get_origin(field.annotation) in (typing.Union, types.UnionType)
        allowed: list = [None]
        for kind in ([a for a in args if a is not type(None)] if union else [field.annotation]):
            if typing.get_origin(kind) is typing.Literal:
                allowed.append(StrOptions(set(typing.get_args(kind))))
            elif kind in (int, float):
                bounds = {attr: getattr(m, attr) for m in field.metadata for attr in ("ge", "gt", "le", "lt")
                          if hasattr(m, attr)}
                left, right = ("ge" in bounds, "le" in bounds)  # a missing bound is open (infinite)
                closed = {(True, True): "both", (True, False): "left", (False, True): "right",
                          (False, False): "neither"}[(left, right)]
                allowed.append(Interval(numbers.Integral if kind is int else numbers.Real,
                                        bounds.get("ge", bounds.get("gt")), bounds.get("le", bounds.get("lt")),
                                        closed=closed))
            else:
                allowed.append(typing.get_origin(kind) or kind)
        constraints[name] = allowed
    return constraints


class Clustering(ClusterMixin, BaseEstimator):
    """Cluster a table: every algorithm and cluster count ranked on a leaderboard, the best kept.

    Parameters
    ----------
    k : list of int, optional
        Cluster counts for the algorithms that take one (at most 10, each 2..100);
        default: chosen from the row count.
    algorithms : list of str, optional
        Names in :data:`clusterflow.algorithms.REGISTRY`; default: every algorithm of ``mode``.
    roles : dict of column -> role, optional
        Roles that override inference (as in a roles file). A NumPy array's columns are numeric.
    seed : int, default=0
        Seeds the partition, the reducer and every algorithm.
    mode : {"comprehensive", "quick"}, default="comprehensive"
    metric : {"auto", "silhouette"}, default="auto"
        How the leaderboard ranks models (see :mod:`clusterflow.leaderboard`).
    validation_fraction : float, default=0.2
        Share of the rows held out to score the candidates.
    weights : dict of modality -> float, optional
        Per-modality weight multipliers.
    text_featurizer : {"embedding", "tfidf"}, default="embedding"
    text_model, image_model : str, optional
        Local model folders (see the CLI's ``--text-model`` and ``--image-model``).
    text_backend : {"onnx", "onnx-int8", "torch"}, default="onnx"
        What runs the text embedding model (see the CLI's ``--text-backend``).
    image_root : str, optional
        Folder that image paths are relative to; default: the working directory.
    on_bad_image : {"error", "missing"}, default="error"
    cache : str, optional
        Embedding cache folder or URI; default: no cache.
    n_jobs : int, optional
        Candidates fitted side by side in joblib threads (each fit uses the BLAS threads
        it is given); default: one at a time.
    client : distributed.Client, optional
        Fit the candidates on this Dask client's workers instead.

    Attributes
    ----------
    leaderboard_ : DataFrame
        One row per candidate, ranked: the run folder's ``leaderboard.csv``.
    models_ : dict of model id -> ClusterModel
        Every candidate that trained.
    best_model_id_ : str
    best_model_ : ClusterModel
        The leaderboard's top model.
    labels_ : ndarray of shape (n_samples,)
        The best model's cluster of every row of ``X`` (-1 = noise).
    roles_ : dict of column -> role
        The roles the run used.

    Examples
    --------
    >>> from clusterflow import Clustering
    >>> from clusterflow.samples import customers
    >>> table = customers(300, seed=0).drop(columns="segment")
    >>> clustering = Clustering(k=[3, 4], algorithms=["kmeans"]).fit(table)
    >>> clustering.leaderboard_[["rank", "model_id"]].shape
    (2, 2)
    >>> clustering.predict(table.head(3)).shape
    (3,)
    """

    _parameter_constraints: dict = {
        **_constraints_of(RunParameters, ["k", "algorithms", "seed", "mode", "metric", "validation_fraction", "weights",
                                          "text_featurizer", "text_model", "text_backend", "image_model",
                                          "image_root",
                                          "on_bad_image", "cache"]),
        "roles": [dict, None],
        "n_jobs": [numbers.Integral, None],
        "client": [HasMethods(["submit", "scatter"]), None],
    }

    def __init__(self, k=None, algorithms=None, roles=None, seed=0, mode="comprehensive", metric="auto",
                 validation_fraction=0.2,
                 weights=None, text_featurizer="embedding", text_model=None, image_model=None, image_root=None,
                 on_bad_image="error", cache=None, n_jobs=None, client=None, text_backend="onnx"):
        self.k = k
        self.algorithms = algorithms
        self.roles = roles
        self.seed = seed
        self.mode = mode
        self.metric = metric
        self.validation_fraction = validation_fraction
        self.weights = weights
        self.text_featurizer = text_featurizer
        self.text_model = text_model
        self.text_backend = text_backend
        self.image_model = image_model
        self.image_root = image_root
        self.on_bad_image = on_bad_image
        self.cache = cache
        self.n_jobs = n_jobs
        self.client = client

    def fit(self, X, y=None):
        """Run every candidate on ``X`` (a DataFrame, or a numeric array) and keep the leaderboard."""
        self._validate_params()
        frame, numeric = as_frame(self, X, reset=True)
        params = parse_parameters(
            k=self.k, algorithms=self.algorithms, mode=self.mode, metric=self.metric, seed=self.seed,
            validation_fraction=self.validation_fraction, weights=self.weights,
            text_featurizer=self.text_featurizer, text_model=self.text_model, text_backend=self.text_backend,
            cache=self.cache,
            image_root=os.path.abspath(self.image_root or os.getcwd()), on_bad_image=self.on_bad_image,
            image_model=self.image_model)
        roles = self.roles or ({column: "numeric" for column in frame.columns} if numeric else None)
        inputs = runs.check_input(frame, roles, data_uri="<DataFrame>", sha256=_frame_hash(frame),
                                  image_root=params.image_root, on_bad_image=params.on_bad_image)
        prepared = runs.prepare_features(inputs, params, client=self.client)
        results = runs.fit_candidates(prepared, params.silhouette_sample, n_jobs=self.n_jobs, client=self.client)
        self.leaderboard_, self.best_model_id_, self.models_ = runs.rank_candidates(inputs, prepared, results,
                                                                                     params.metric)
        self.best_model_ = self.models_[self.best_model_id_]
        self.roles_ = inputs.roles
        self.labels_ = self.best_model_.labels_of(runs.full_matrix(prepared))
        self._run = (inputs, prepared, results, params)
        return self

    def predict(self, X) -> np.ndarray:
        """The best model's cluster of each row of ``X`` (-1 = noise)."""
        check_is_fitted(self)
        return self.best_model_.predict(as_frame(self, X, reset=False)[0])

    def predict_proba(self, X) -> np.ndarray:
        """The best model's membership probability of each row in each of its clusters."""
        check_is_fitted(self)
        return self.best_model_.predict_proba(as_frame(self, X, reset=False)[0])

    def assign(self, X) -> pd.DataFrame:
        """The best model's assignments frame: the id column (or ``row_id``), ``cluster``, ``p_<cluster>``."""
        check_is_fitted(self)
        return self.best_model_.assign(as_frame(self, X, reset=False)[0])

    def save(self, uri: str, storage_options: dict | None = None) -> str:
        """Publish the run folder at ``uri`` (as the ``cluster`` flow does); returns ``uri``.

        The fitted table is kept in the folder as ``input.parquet``, so ``load_model``,
        ``predict``, ``rerun`` and ``report`` work on the saved run as on any other.
        """
        check_is_fitted(self)
        folder = RunFolder(uri, storage_options)
        folder.ensure_unpublished()
        with folder.locked("save") as lock:
            inputs, prepared, results, params = self._published_inputs(folder)
            manifest = runs.write_run_files(folder, runs.new_run_id(uri), inputs, prepared, results, params)
            manifest = reporting.add_report(folder, inputs.frame, manifest)
            runs.commit_run(folder, manifest, lock)
        return uri

    def report(self, path: str, model_id: str | None = None, storage_options: dict | None = None) -> str:
        """Write the self-contained HTML report of the best model (or ``model_id``) to ``path``; returns it."""
        check_is_fitted(self)
        with tempfile.TemporaryDirectory(prefix="clusterflow-report-") as scratch:
            folder = RunFolder(os.path.join(scratch, "run"))
            inputs, prepared, results, params = self._published_inputs(folder)
            manifest = runs.write_run_files(folder, "report", inputs, prepared, results, params)
            built = reporting.build_report(folder, inputs.frame, manifest, model_id)
            with fsspec.open(path, "wb", **(storage_options or {})) as f:
                f.write(built.files[built.report].encode())
        return path

    def _published_inputs(self, folder: RunFolder):
        """The run's stages' outputs, with the table written into ``folder`` as its input."""
        inputs, prepared, results, params = self._run
        folder.write(INPUT_FILE, frame_to_parquet_bytes(inputs.frame))
        uri = folder.url(INPUT_FILE)
        inputs = replace(inputs, data_uri=uri, sha256=content_hash(uri, folder.storage_options))
        return inputs, prepared, results, params

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.allow_nan = True  # missing values are imputed
        return tags


def _frame_hash(frame: pd.DataFrame) -> str:
    """A content digest of an in-memory table (its rows, in order), in place of a file's SHA-256."""
    rows = pd.util.hash_pandas_object(frame.astype(str), index=False).to_numpy()
    return hashlib.sha256(rows.tobytes() + "\x1f".join(map(str, frame.columns)).encode()).hexdigest()
