"""Everything the report shows about one model, computed from the raw table and the cached features."""
from __future__ import annotations

import json
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from ..modalities import modality_of_role
from ..model import ClusterModel
from ..roles import is_missing
from .associations import Associations, feature_associations
from .images import ActivationMap, ImageSource, image_embedding, occlusion_map
from .impact import feature_impact, most_separated
from .profiles import ALL, coordinates, geo_profile

GEO_ROLES = ("geo", "latitude", "longitude")
MAX_PROFILED_COLUMNS = 100  # wider tables: insights and report cover the columns that separate the clusters most


@dataclass
class ModelInsights:
    """Cluster Insights, Feature Impact, Feature Associations and image views of one model.

    Attributes
    ----------
    model_id : str
    sizes : DataFrame
        ``cluster, rows, share``, largest cluster first (-1 is noise).
    impact, modality_impact : DataFrame
        Feature Impact per input column and per modality block (see :func:`feature_impact`).
    profiles : dict of feature -> profile
        Per feature, per cluster and over all rows (key ``"all"``), in Feature Impact order.
    roles : dict of feature -> role
    associations : Associations or None
    embedding : DataFrame or None
        ``row, path, x, y, cluster, p_<cluster>...`` for a sample of validation images.
    activation_maps : list of ActivationMap
    """

    model_id: str
    sizes: pd.DataFrame
    impact: pd.DataFrame
    modality_impact: pd.DataFrame
    profiles: dict[str, dict]
    roles: dict[str, str]
    associations: Associations | None = None
    embedding: pd.DataFrame | None = None
    activation_maps: list[ActivationMap] = field(default_factory=list)

    @property
    def clusters(self) -> list[int]:
        return [int(c) for c in self.sizes["cluster"]]


def compute_insights(model: ClusterModel, frame: pd.DataFrame, X: np.ndarray, validation: np.ndarray, *,
                     model_id: str, source: ImageSource | None = None, association_method: str = "mutual_info",
                     projection: str = "pca", max_images: int = 300, max_activation_maps: int = 4,
                     random_state: int = 0) -> ModelInsights:
    """Compute every insight of ``model`` on the run's table.

    Parameters
    ----------
    model : ClusterModel
        A fitted model of the run.
    frame : DataFrame
        The run's raw input table.
    X : ndarray of shape (n_rows, n_components)
        The reduced feature matrix of every row, in table order (the run's cached features).
    validation : ndarray of int
        Positions of the validation rows (Feature Impact and the image views use them).
    model_id : str
    source : ImageSource, optional
        Resolves image paths (default: as given).
    association_method : {"mutual_info", "cramers_v"}, default="mutual_info"
    projection : {"pca", "tsne"}, default="pca"
        The projection of the Image Embeddings view.
    max_images : int, default=300
        Validation images in the embedding view at most.
    max_activation_maps : int, default=4
        Occlusion maps, one per largest cluster's most representative image.
    random_state : int, default=0

    Returns
    -------
    ModelInsights

    Examples
    --------
    >>> insights = compute_insights(model, table, X, partition.validation, model_id="kmeans-k4")  # doctest: +SKIP
    >>> insights.sizes  # doctest: +SKIP
    """
    source = source or ImageSource()
    clusterer = model.pipeline_[-1]
    labels = clusterer.predict(X).astype(int)
    distances = _distance_to_centre(X, labels)
    clusters, counts = np.unique(labels, return_counts=True)
    sizes = pd.DataFrame({"cluster": clusters, "rows": counts, "share": counts / len(labels)})
    sizes = sizes.sort_values(["rows", "cluster"], ascending=[False, True], kind="stable").reset_index(drop=True)

    roles = {c: r for c, r in model.roles_.items() if r not in ("id", "ignore")}
    impact, modality_impact = feature_impact(model, frame.iloc[validation], max_columns=MAX_PROFILED_COLUMNS,
                                             random_state=random_state)
    rank = {f: i for i, f in enumerate(impact["feature"])}
    if len(roles) > MAX_PROFILED_COLUMNS:  # a very wide table: profile the columns that separate the clusters most
        kept = most_separated(frame, [c for c, r in roles.items() if r not in GEO_ROLES], labels, MAX_PROFILED_COLUMNS)
        roles = {c: r for c, r in roles.items() if c in kept or r in GEO_ROLES}
    profiles = _profiles(frame, roles, labels, distances, random_state)
    order = sorted(profiles, key=lambda f: min(rank.get(c, len(rank)) for c in f.split(" / ")))
    associations = None
    if sum(r in ("numeric", "categorical") for r in roles.values()) >= 2:
        associations = feature_associations(frame, roles, list(impact["feature"]), method=association_method,
                                            random_state=random_state)
    insights = ModelInsights(model_id, sizes, impact, modality_impact, {f: profiles[f] for f in order},
                             {f: profiles[f]["role"] for f in order}, associations)
    images = [c for c, r in roles.items() if r == "image"]
    if images:
        insights.embedding = _embedding(model, frame, X, validation, images[0], projection, max_images, random_state)
        insights.activation_maps = [
            occlusion_map(model, frame.iloc[[row]], images[0], source)
            for row in _representative_rows(profiles[images[0]], sizes, max_activation_maps)
        ]
    return insights


def _profiles(frame: pd.DataFrame, roles: dict[str, str], labels: np.ndarray, distances: np.ndarray,
              random_state: int) -> dict[str, dict]:
    profiles = {}
    for column, role in roles.items():
        modality = modality_of_role(role)
        if modality.profile is None or role in ("latitude", "longitude"):  # a pair is profiled below, as one
            continue
        profile = modality.profile(frame, column, labels, distances, random_state)
        profiles[column] = {"role": role, **profile}
    pair = {r: c for c, r in roles.items() if r in ("latitude", "longitude")}
    if len(pair) == 2:
        profiles[f"{pair['latitude']} / {pair['longitude']}"] = {
            "role": "geo", **geo_profile(coordinates(frame, pair), labels, distances, random_state)}
    return profiles


def _distance_to_centre(X: np.ndarray, labels: np.ndarray) -> np.ndarray:
    distances = np.empty(len(X))
    for c in np.unique(labels):
        members = labels == c
        distances[members] = np.linalg.norm(X[members] - X[members].mean(axis=0), axis=1)
    return distances


def _embedding(model: ClusterModel, frame: pd.DataFrame, X: np.ndarray, validation: np.ndarray, column: str,
               projection: str, max_images: int, random_state: int) -> pd.DataFrame | None:
    rows = validation[~is_missing(frame[column].iloc[validation]).to_numpy()]
    if len(rows) < 3:
        return None
    if len(rows) > max_images:
        rows = np.sort(np.random.default_rng(random_state).choice(rows, max_images, replace=False))
    featurizer, _, clusterer = (step for _, step in model.pipeline_.steps)
    name, block, columns = next(t for t in featurizer.transformers_ if column in list(t[2]))
    features = np.asarray(block.transform(frame.iloc[rows][list(columns)]), dtype=float)
    xy = image_embedding(features, projection, random_state)
    embedding = pd.DataFrame({"row": rows, "path": frame[column].iloc[rows].astype(str).to_numpy(),
                              "x": xy[:, 0], "y": xy[:, 1], "cluster": clusterer.predict(X[rows]).astype(int)})
    proba = clusterer.predict_proba(X[rows])
    for j, c in enumerate(clusterer.clusters_):
        embedding[f"p_{int(c)}"] = proba[:, j]
    return embedding


def _representative_rows(profile: dict, sizes: pd.DataFrame, n: int) -> list[int]:
    rows = []
    for cluster in sizes["cluster"]:
        examples = profile["stats"].get(str(cluster), {}).get("examples", [])
        if cluster != -1 and examples:
            rows.append(examples[0]["row"])
    return rows[:n]


def defining_features(insights: ModelInsights, cluster: int, n: int = 2) -> list[str]:
    """Short facts on the features that set ``cluster`` apart from all the data, most distinctive first.

    Numeric: the cluster's median against the overall one, in units of the overall
    interquartile range; categorical: the level whose share rises the most.
    """
    facts = []
    for feature, profile in insights.profiles.items():
        stats, key = profile["stats"], str(cluster)
        if profile["kind"] == "numeric" and stats[key]["median"] is not None and stats[ALL]["median"] is not None:
            spread = (stats[ALL]["q3"] - stats[ALL]["q1"]) or 1.0
            lift = abs(stats[key]["median"] - stats[ALL]["median"]) / spread
            facts.append((lift, f"{feature} median {_fmt(stats[key]['median'])} "
                                f"(all data {_fmt(stats[ALL]['median'])})"))
        elif profile["kind"] == "categorical" and profile["levels"]:
            lifts = {lv: stats[key]["levels"][lv] - stats[ALL]["levels"][lv] for lv in profile["levels"]}
            level = max(lifts, key=lifts.get)
            facts.append((2 * lifts[level], f"{feature} = {level} for {stats[key]['levels'][level]:.0%} "
                                            f"(all data {stats[ALL]['levels'][level]:.0%})"))
        elif profile["kind"] == "text" and stats[key].get("terms"):
            terms = ", ".join(t["term"] for t in stats[key]["terms"][:3])
            facts.append((0.5, f"{feature} words: {terms}"))
    return [text for _, text in sorted(facts, key=lambda f: -f[0])[:n]]


def describe_clusters(insights: ModelInsights, max_clusters: int = 10) -> list[str]:
    """One sentence of facts per cluster (largest first): its size and its defining features."""
    sentences = []
    for row in insights.sizes.head(max_clusters).itertuples():
        name = "Noise" if row.cluster == -1 else f"Cluster {row.cluster}"
        facts = defining_features(insights, row.cluster) if row.cluster != -1 else []
        tail = f"; {'; '.join(facts)}" if facts else ""
        sentences.append(f"{name}: {row.rows:,} rows ({row.share:.0%}){tail}.")
    return sentences


def _fmt(value: float) -> str:
    return f"{value:,.3g}" if abs(value) < 1000 else f"{value:,.0f}"


def insight_files(insights: ModelInsights) -> dict[str, bytes]:
    """The downloadable files of ``insights`` (CSV and JSON), by name inside ``insights/<model_id>/``."""
    files = {
        "clusters.csv": insights.sizes.to_csv(index=False),
        "feature_impact.csv": insights.impact.to_csv(index=False),
        "modality_impact.csv": insights.modality_impact.to_csv(index=False),
        "cluster_insights.csv": long_table(insights).to_csv(index=False),
    }
    if insights.associations is not None:
        files["associations.csv"] = insights.associations.matrix.to_csv(index_label="feature")
        files["associated_pairs.csv"] = insights.associations.strong_pairs.to_csv(index=False)
    if insights.embedding is not None:
        files["image_embedding.csv"] = insights.embedding.to_csv(index=False)
    document = {
        "model_id": insights.model_id,
        "clusters": _records(insights.sizes),
        "summary": describe_clusters(insights, max_clusters=len(insights.sizes)),
        "feature_impact": _records(insights.impact),
        "modality_impact": _records(insights.modality_impact),
        "features": insights.profiles,
        "associations": None if insights.associations is None else {
            "method": insights.associations.method, "features": list(insights.associations.matrix.columns),
            "matrix": insights.associations.matrix.round(5).to_numpy().tolist(),
            "strong_pairs": _records(insights.associations.strong_pairs)},
        "activation_maps": [m.as_dict() for m in insights.activation_maps],
    }
    files["insights.json"] = json.dumps(document, indent=1, allow_nan=False)
    return {name: data.encode() if isinstance(data, str) else data for name, data in files.items()}


def long_table(insights: ModelInsights) -> pd.DataFrame:
    """Every per-cluster statistic as rows ``feature, role, cluster, statistic, level, value``."""
    rows = []
    for feature, profile in insights.profiles.items():
        for cluster, stats in profile["stats"].items():
            base = {"feature": feature, "role": profile["role"], "cluster": cluster}
            for statistic, value in stats.items():
                if statistic == "levels":
                    rows += [{**base, "statistic": "share", "level": lv, "value": v} for lv, v in value.items()]
                elif statistic == "terms":
                    rows += [{**base, "statistic": "term_score", "level": t["term"], "value": t["score"]}
                             for t in value]
                elif statistic == "centre":
                    rows += [{**base, "statistic": f"centre_{axis}", "level": "", "value": value[axis]}
                             for axis in ("lat", "lon") if value]
                elif statistic != "examples":
                    rows.append({**base, "statistic": statistic, "level": "", "value": value})
    return pd.DataFrame(rows, columns=["feature", "role", "cluster", "statistic", "level", "value"])


def _records(frame: pd.DataFrame) -> list[dict]:
    return json.loads(frame.to_json(orient="records"))

