"""What a fitted model is: its blueprint, read from the fitted objects themselves.

A blueprint lists, left to right, each modality block (its input columns, the fitted
featurizer and its settings, the block's weight and width), the reducer (method,
components, explained variance) and the clusterer (algorithm, settings, fit rows, how
new rows are assigned). Every figure comes from the fitted estimators, so the
description cannot drift from the model. (:mod:`clusterflow.blueprint` *builds* the
pipeline; this module *describes* a fitted one.)

The blueprint is a JSON-able dict, published as ``models/<model_id>/blueprint.json``;
:func:`blueprint_tree` turns it into nested lines for the terminal and the Prefect UI.
"""
from __future__ import annotations

import inspect
import json
from numbers import Number

import numpy as np

from .algorithms import NOISE, REGISTRY
from .errors import InputValidationError, Problem
from .run_folder import BLUEPRINT_FILE, model_file
HIDDEN_SETTINGS = frozenset({"verbose", "verbose_interval", "copy_x", "copy", "warm_start", "memory"})
LISTED_LEVELS = 8  # one-hot levels named per categorical column
NOT_FEATURIZED_WHY = {"id": "not a feature; carried into the outputs as the row id",
                      "ignore": "not a feature"}


def describe_model(model, model_id: str, reasons: dict[str, str] | None = None,
                   train_rows: int | None = None) -> dict:
    """The blueprint of a fitted :class:`~clusterflow.model.ClusterModel`.

    Parameters
    ----------
    model : ClusterModel
        A fitted model (``pipeline_`` set).
    model_id : str
    reasons : dict of column -> str, optional
        Why each column got its role (the run's role decisions); dropped columns show it.
    train_rows : int, optional
        Rows of the train partition, to say when the clusterer was fitted on a sample of them.

    Returns
    -------
    dict
        ``model_id``, ``blocks``, ``dropped``, ``featurized_width``, ``reducer`` and ``clusterer``.

    Examples
    --------
    >>> blueprint = describe_model(load_model("runs/customers"), "kmeans-k4")  # doctest: +SKIP
    >>> print("\\n".join(format_tree(blueprint_tree(blueprint))))  # doctest: +SKIP
    """
    featurizer, reducer, clusterer = (step for _, step in model.pipeline_.steps)
    reasons = reasons or {}
    blocks = [_block(name, block, list(columns)) for name, block, columns in featurizer.transformers_
              if not isinstance(block, str)]  # "drop" / "passthrough" remainders
    total_variance = sum(b["total_variance"] for b in blocks) or 1.0
    for b in blocks:
        b["variance_share"] = b["total_variance"] / total_variance
    featurized = {c for b in blocks for c in b["columns"]}
    dropped = [{"column": column, "role": role,
                "why": reasons.get(column) or NOT_FEATURIZED_WHY.get(role, f"no featurizer for role {role}")}
               for column, role in model.roles_.items() if column not in featurized]
    featurized_width = sum(b["width"] for b in blocks)
    return {"model_id": model_id, "id_column": model.id_column_, "blocks": blocks, "dropped": dropped,
            "featurized_width": featurized_width, "reducer": _reducer(reducer, featurized_width),
            "clusterer": _clusterer(clusterer, train_rows)}


def blueprint_file(model, model_id: str, reasons: dict[str, str] | None = None, train_rows: int | None = None) -> bytes:
    """The ``blueprint.json`` of a model folder."""
    return json.dumps(describe_model(model, model_id, reasons, train_rows), indent=2).encode()


def check_model_id(manifest, model_id: str) -> None:
    """Refuse a model id the run (its :class:`~clusterflow.run_folder.Manifest`) does not have, listing the ones it has."""
    if model_id not in manifest.models:
        raise InputValidationError([Problem(rule=f"the run has no model {model_id!r}",
                                            hint=f"models are: {', '.join(manifest.models)}")])


def run_blueprint(folder, manifest, model_id: str | None = None, model=None) -> dict:
    """The blueprint of a published run's model (default: its top model).

    Read from ``models/<model_id>/blueprint.json``; a run published before blueprints
    existed gets it described from its fitted model (``model``, or loaded from the run).
    """
    model_id = model_id or manifest.top_model
    check_model_id(manifest, model_id)
    path = model_file(model_id, BLUEPRINT_FILE)
    if path in manifest.files:
        return folder.read_json(path, manifest)
    if model is None:
        from .model import load_published_model

        model = load_published_model(folder, manifest, model_id)
    return describe_model(model, model_id, {r["column"]: r["reason"] for r in manifest.roles},
                          manifest.partition.train_rows)


def shown_settings(estimator, changed_only: bool = False) -> dict:
    """The settings a blueprint shows of an estimator: its own scalar parameters, logging flags left out.

    ``changed_only`` keeps only those that differ from the class's defaults (for featurizer steps,
    whose defaults are many and rarely the point).
    """
    defaults = {name: p.default for name, p in inspect.signature(type(estimator).__init__).parameters.items()}
    return {key: _plain(value) for key, value in sorted(estimator.get_params(deep=False).items())
            if key not in HIDDEN_SETTINGS and isinstance(value, (str, bool, Number)) and value == value  # not NaN
            and not (changed_only and defaults.get(key, inspect.Parameter.empty) == value)}


def _block(name: str, block, columns: list[str]) -> dict:
    featurizer, scaler = block[0], block[-1]
    summary, per_column = BLOCK_DESCRIBERS.get(name, _generic)(featurizer, columns)
    steps = [type(step).__name__ for _, step in getattr(featurizer, "steps", [(None, featurizer)])]
    return {"modality": name, "columns": columns, "featurizer": " -> ".join(steps), "summary": summary,
            "column_details": per_column, "settings": _settings(featurizer),
            "width": int(scaler.n_features_in_), "weight": scaler.total_variance / len(columns),
            "total_variance": float(scaler.total_variance), "scale": float(scaler.scale_),
            "structure_share": getattr(scaler, "structure_share_", None)}


def structure_note(block: dict) -> str:
    """", x1.23 by its cluster structure" for a blueprint block its cluster structure reweighed, else ""."""
    share = block.get("structure_share")
    return f", x{share:.2f} by its cluster structure" if share is not None else ""


def _settings(featurizer) -> dict:
    """A featurizer's shown settings; for a pipeline, each step's, keyed ``step.param``."""
    steps = getattr(featurizer, "steps", None)
    if steps is None:
        return shown_settings(featurizer, changed_only=True)
    return {f"{step}.{key}": value for step, estimator in steps
            for key, value in shown_settings(estimator, changed_only=True).items()}


def _numeric(featurizer, columns: list[str]) -> tuple[str, dict]:
    imputer, scaler = featurizer.steps[-2][1], featurizer.steps[-1][1]
    flagged = [] if imputer.indicator_ is None else [columns[i] for i in imputer.indicator_.features_]
    flag = f" + missing flag ({len(flagged)} of {len(columns)} columns had missing values)" if imputer.add_indicator \
        else ""
    scaling = {"SpreadScaler": "scaled by max(IQR / 1.349, std)", "RobustScaler": "robust scaling",
               "StandardScaler": "standard scaling"}.get(
        type(scaler).__name__, type(scaler).__name__)
    medians = dict(zip(columns, imputer.statistics_))
    return (f"{imputer.strategy} impute{flag}, {scaling}",
            {c: f"{imputer.strategy} {medians[c]:.4g}" + (" + missing flag" if c in flagged else "")
             for c in columns})


def _categorical(encoder, columns: list[str]) -> tuple[str, dict]:
    details = encoder.column_details_
    one_hot = sum(d["one_hot"] for d in details.values())
    other = " + other" if any(d["other"] for d in details.values()) else ""
    frequency = " + frequency" if any(d["frequency"] for d in details.values()) else ""
    levels = dict(zip(encoder.feature_names_in_, encoder.categories_))
    return (f"one-hot of {one_hot:,} levels{other}{frequency} (at most {encoder.max_categories} features a column)",
            {c: f"{details[c]['summary']}: {_listing(levels[str(c)])}" for c in columns})


def _text(featurizer, columns: list[str]) -> tuple[str, dict]:
    summary = featurizer.summary()
    if summary["featurizer"] == "tfidf+svd":
        per_column = {c: f"TF-IDF ({vocabulary:,} terms) + SVD to {components} components + missing flag"
                      for c, vocabulary, components in zip(columns, summary["vocabulary"], summary["components"])}
        return "TF-IDF + SVD (latent semantic analysis) + missing flag", per_column
    seen = summary["cache_hits"] + summary["texts_encoded"]
    return (f"{summary['model']}, {featurizer.embedding_dim_}-d, cache hits {summary['cache_hits']:,} / {seen:,}",
            {c: f"{featurizer.embedding_dim_}-d embedding + missing flag" for c in columns})


def _column_summaries(featurizer, columns: list[str]) -> tuple[str, dict]:
    per_column = {c: featurizer.column_details_[c]["summary"] for c in columns}
    return "; ".join(dict.fromkeys(per_column.values())), per_column


def _datetime(featurizer, columns: list[str]) -> tuple[str, dict]:
    parts = list(dict.fromkeys(p for c in columns for p in featurizer.parts_[c]))
    cyclic = f"cyclic {', '.join(parts)} + " if parts else ""
    return f"{cyclic}scaled time (UTC)", {c: featurizer.column_details_[c]["summary"] for c in columns}


def _geo(featurizer, columns: list[str]) -> tuple[str, dict]:
    per_column = {c: "WKT point -> unit-sphere x, y, z" for c in featurizer.points}
    for lat, lon in zip(featurizer.latitudes, featurizer.longitudes):
        per_column[lat] = f"latitude, paired with {lon}"
        per_column[lon] = f"longitude, paired with {lat}"
    locations = len(featurizer.points) + len(featurizer.latitudes)
    return f"unit-sphere x, y, z of {locations} location{'s' * (locations != 1)} + missing flag", per_column


def _generic(featurizer, columns: list[str]) -> tuple[str, dict]:
    return type(featurizer).__name__, {}


BLOCK_DESCRIBERS = {"numeric": _numeric, "categorical": _categorical, "text": _text, "image": _column_summaries,
                    "datetime": _datetime, "geo": _geo}


def _reducer(reducer, featurized_width: int) -> dict:
    if isinstance(reducer, str):  # "passthrough"
        return {"method": "none", "input_width": featurized_width, "components": featurized_width,
                "explained_variance": 1.0, "settings": {},
                "note": "the featurized matrix is no wider than the components kept, so it is not reduced"}
    ratio = getattr(reducer, "explained_variance_ratio_", None)
    return {"method": type(reducer).__name__, "input_width": int(reducer.n_features_in_),
            "components": int(getattr(reducer, "n_components_", reducer.n_components)),
            "explained_variance": None if ratio is None else float(np.sum(ratio)),
            "settings": shown_settings(reducer)}


def _clusterer(clusterer, train_rows: int | None) -> dict:
    spec = REGISTRY[clusterer.algorithm]
    estimator = clusterer.estimator_
    labels = np.asarray(clusterer.labels_)
    fit_rows = int(clusterer.fit_rows_)
    if train_rows and fit_rows < train_rows:
        sample = f"fitted on a seeded sample of {fit_rows:,} of the {train_rows:,} train rows; the rest assigned by predict"
    elif train_rows:
        sample = f"fitted on all {fit_rows:,} train rows"
    else:
        sample = f"fitted on {fit_rows:,} rows"
    described = {"algorithm": clusterer.algorithm, "description": spec.description,
                 "estimator": type(estimator).__name__, "settings": shown_settings(estimator),
                 "k": clusterer.n_clusters, "clusters": int(len(clusterer.clusters_)),
                 "noise_fraction": float(np.mean(labels == NOISE)) if len(labels) else 0.0,
                 "input_width": int(clusterer.n_features_in_), "fit_rows": fit_rows, "train_rows": train_rows,
                 "sample_note": sample, "assignment": _assignment(clusterer, spec)}
    projection = getattr(estimator, "projection_", None)
    if projection is not None:
        described["projection"] = (f"{type(projection).__name__} to {projection.n_components_} of its "
                                   f"{projection.n_features_in_} input dimensions first")
    return described


def _assignment(clusterer, spec) -> dict:
    """How new rows get a cluster and probabilities: the algorithm's own predict, or the inductive k-NN path."""
    if spec.predict is None:
        classifier = clusterer.classifier_
        return {"path": "inductive k-NN",
                "method": f"{type(classifier).__name__} on the fitted labels ({classifier.n_neighbors} neighbours, "
                          f"{classifier.weights} weights)",
                "probabilities": "the classifier's neighbour votes", "settings": shown_settings(classifier)}
    temperature = getattr(clusterer, "temperature_", None)
    if temperature is not None:
        probabilities = f"softmax of squared distances to the centres (temperature {temperature:.4g})"
    elif spec.proba is not None:
        probabilities = f"{type(clusterer.estimator_).__name__}'s own membership probabilities"
    else:
        probabilities = "1 for the predicted cluster, 0 elsewhere"
    return {"path": "native", "method": f"{type(clusterer.estimator_).__name__}.predict",
            "probabilities": probabilities, "settings": {}}


def _listing(levels, shown: int = LISTED_LEVELS) -> str:
    listed = ", ".join(str(level) for level in levels[:shown])
    return listed + (f" and {len(levels) - shown:,} more" if len(levels) > shown else "")


def _plain(value):
    return value.item() if isinstance(value, np.generic) else value


# The tree: one structure, printed as indented text (terminal) and as nested bullets (Prefect UI).

def blueprint_tree(blueprint: dict, max_columns: int | None = None) -> list[tuple[str, list]]:
    """The blueprint as nested ``(line, children)`` nodes, left to right: blocks, dropped, reducer, clusterer.

    ``max_columns`` lists at most that many columns per block (the rest counted), for short summaries.
    """
    blocks = []
    for b in blueprint["blocks"]:
        details = [(f"{c}: {b['column_details'][c]}" if c in b["column_details"] else c, [])
                   for c in b["columns"]]
        if max_columns is not None and len(details) > max_columns:
            details = details[:max_columns] + [(f"... and {len(details) - max_columns} more columns", [])]
        settings = ", ".join(f"{k}={v}" for k, v in b["settings"].items())
        children = [(b["summary"], []), *([(f"settings: {settings}", [])] if settings and max_columns is None else []),
                    *details]
        blocks.append((f"{b['modality']}: {_count(len(b['columns']), 'column')} -> {_count(b['width'], 'feature')}, "
                       f"weight {b['weight']:.3g} ({b['variance_share']:.0%} of the variance{structure_note(b)})", children))
    nodes = [(f"blocks -> {_count(blueprint['featurized_width'], 'feature')}", blocks)]
    if blueprint["dropped"]:
        nodes.append(("not featurized", [(f"{d['column']} ({d['role']}): {d['why']}", [])
                                         for d in blueprint["dropped"]]))
    r = blueprint["reducer"]
    if r["method"] == "none":
        nodes.append((f"reducer: none ({r['note']})", []))
    else:
        variance = "" if r["explained_variance"] is None else f", {r['explained_variance']:.1%} of the variance"
        nodes.append((f"reducer: {r['method']}, {r['input_width']} -> {r['components']} components{variance}", []))
    c = blueprint["clusterer"]
    k = f"k={c['k']}, " if c["k"] is not None else ""
    noise = f", {c['noise_fraction']:.1%} noise in the fit" if c["noise_fraction"] else ""
    settings = ", ".join(f"{key}={value}" for key, value in c["settings"].items())
    a = c["assignment"]
    nodes.append((f"clusterer: {c['algorithm']} ({c['estimator']}), {k}{_count(c['clusters'], 'cluster')}{noise}", [
        *([(f"settings: {settings}", [])] if settings else []),
        *([(c["projection"], [])] if c.get("projection") else []),
        (c["sample_note"], []),
        (f"new rows: {a['path']}, {a['method']}; probabilities: {a['probabilities']}", []),
    ]))
    return [(f"blueprint of {blueprint['model_id']}", nodes)]


def format_tree(nodes: list[tuple[str, list]], depth: int = 0) -> list[str]:
    """Indented lines (two spaces a level) for the terminal."""
    lines = []
    for text, children in nodes:
        lines.append("  " * depth + text)
        lines += format_tree(children, depth + 1)
    return lines


def markdown_tree(nodes: list[tuple[str, list]], depth: int = 0) -> str:
    """Nested markdown bullets; every text is escaped, so column names and levels render as written."""
    return "".join("  " * depth + f"- {_markdown_escape(text)}\n" + markdown_tree(children, depth + 1)
                   for text, children in nodes)


def _markdown_escape(text: str) -> str:
    # Entities for the HTML characters (no renderer then sees a tag), backslashes for markdown's own.
    text = " ".join(str(text).split())  # a newline in a name would end the bullet
    entities = {"&": "&amp;", "<": "&lt;", ">": "&gt;"}
    return "".join(entities.get(ch) or ("\\" + ch if ch in "\\`*_{}[]()#+-.!|~" else ch) for ch in text)


def _count(n: int, noun: str) -> str:
    return f"{n:,} {noun}{'s' * (n != 1)}"
