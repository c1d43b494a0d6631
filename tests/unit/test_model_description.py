"""The blueprint of fitted models, its diagram and tree, and the cluster map.

One small run is built without Prefect or Dask (load, featurize, four candidates, write), so these
tests are fast; the report in headless Chromium is tested in tests/integration/test_report.py.
"""
from __future__ import annotations

import xml.etree.ElementTree as ET
from dataclasses import replace

import pytest
from threadpoolctl import threadpool_limits

from clusterflow import runs
from clusterflow.algorithms import REGISTRY, Clusterer
from clusterflow.cluster_map import check_projection, cluster_map
from clusterflow.errors import InputValidationError
from clusterflow.model import ClusterModel, load_model
from clusterflow.model_description import (BLUEPRINT_FILE, blueprint_tree, describe_model, format_tree, markdown_tree,
                                           run_blueprint)
from clusterflow.report import svg
from tests.hostile_run import HOSTILE_COLUMN, HOSTILE_LEVEL, hostile_table, publish_hostile_run


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    return publish_hostile_run(tmp_path_factory.mktemp("described"))


def blueprints(folder, manifest) -> dict[str, dict]:
    return {m: folder.read_json(f"models/{m}/{BLUEPRINT_FILE}", manifest) for m in manifest.models}


def test_every_input_column_is_listed_once_or_dropped_with_why(run):
    folder, manifest, inputs, _, _ = run
    reasons = {d.column: d.reason for d in inputs.decisions}
    for blueprint in blueprints(folder, manifest).values():
        featurized = [c for block in blueprint["blocks"] for c in block["columns"]]
        dropped = [d["column"] for d in blueprint["dropped"]]
        assert sorted(featurized + dropped) == sorted(inputs.frame.columns)
        assert {d["column"]: d["why"] for d in blueprint["dropped"]} == {c: reasons[c] for c in dropped}
        assert {"customer_id", "constant"} <= set(dropped)
        modality_of = {c: b["modality"] for b in blueprint["blocks"] for c in b["columns"]}
        assert modality_of[HOSTILE_COLUMN] == "numeric" and modality_of["review"] == "text"
        assert modality_of["latitude"] == modality_of["longitude"] == "geo"


def test_blocks_report_the_fitted_widths_weights_and_settings(run):
    folder, manifest, _, prepared, _ = run
    blueprint = blueprints(folder, manifest)[manifest.top_model]
    assert blueprint["featurized_width"] == prepared.featurized_width
    for block in blueprint["blocks"]:
        fitted = prepared.featurizer.named_transformers_[block["modality"]]
        assert block["width"] == fitted[-1].n_features_in_
        assert block["total_variance"] == pytest.approx(fitted[-1].total_variance)
        assert set(block["column_details"]) == set(block["columns"])
    numeric = next(b for b in blueprint["blocks"] if b["modality"] == "numeric")
    assert numeric["summary"].startswith("median impute + missing flag") and "IQR / 1.349" in numeric["summary"]
    categorical = next(b for b in blueprint["blocks"] if b["modality"] == "categorical")
    assert HOSTILE_LEVEL in categorical["column_details"]["plan"]
    assert sum(b["variance_share"] for b in blueprint["blocks"]) == pytest.approx(1.0)
    shares = {b["modality"]: b["structure_share"] for b in blueprint["blocks"]}
    assert {name: weighting["structure_share"] for name, weighting in prepared.block_structure.items()} == {
        name: share for name, share in shares.items() if share is not None}
    assert shares["categorical"] is None and len(prepared.block_structure) >= 2  # numeric, text, geo measured
    tree = "\n".join(format_tree(blueprint_tree(blueprint)))
    assert f"x{shares['geo']:.2f} by its cluster structure" in tree


def test_reducer_is_the_fitted_reducer(run):
    folder, manifest, _, prepared, _ = run
    for blueprint in blueprints(folder, manifest).values():
        reducer = blueprint["reducer"]
        assert reducer["method"] == "PCA" == type(prepared.reducer).__name__
        assert reducer["components"] == prepared.reducer.n_components_ == prepared.X_train.shape[1]
        assert reducer["input_width"] == prepared.featurized_width
        assert reducer["explained_variance"] == pytest.approx(prepared.reducer.explained_variance_ratio_.sum())


def test_clusterer_settings_are_the_fitted_estimators(run):
    folder, manifest, _, prepared, fitted = run
    for model_id, blueprint in blueprints(folder, manifest).items():
        clusterer = blueprint["clusterer"]
        estimator = fitted[model_id].estimator_
        params = estimator.get_params()
        assert clusterer["settings"], model_id
        assert {key: params[key] for key in clusterer["settings"]} == clusterer["settings"]
        assert clusterer["estimator"] == type(estimator).__name__
        assert clusterer["k"] == fitted[model_id].n_clusters
        assert clusterer["clusters"] == len(fitted[model_id].clusters_)
        assert clusterer["fit_rows"] == fitted[model_id].fit_rows_ == len(prepared.partition.train)
        inductive = REGISTRY[clusterer["algorithm"]].predict is None
        assert clusterer["assignment"]["path"] == ("inductive k-NN" if inductive else "native")
    assert blueprints(folder, manifest)["kmeans-k3"]["clusterer"]["settings"]["n_clusters"] == 3
    assert blueprints(folder, manifest)["ward-k3"]["clusterer"]["assignment"]["path"] == "inductive k-NN"
    assert "min_cluster_size" in blueprints(folder, manifest)["hdbscan"]["clusterer"]["settings"]


def test_a_clusterer_fitted_on_a_sample_says_so(run, monkeypatch):
    folder, manifest, _, prepared, _ = run
    monkeypatch.setitem(REGISTRY, "ward", replace(REGISTRY["ward"], max_fit_rows=100))
    model = load_model(folder.url("models/ward-k3"))
    model.pipeline_.steps[-1] = ("clusterer", Clusterer("ward", 3).fit(prepared.X_train))
    clusterer = describe_model(model, "ward-k3", train_rows=len(prepared.partition.train))["clusterer"]
    assert clusterer["fit_rows"] == 100
    assert f"100 of the {len(prepared.partition.train):,} train rows" in clusterer["sample_note"]


def test_a_model_fitted_in_process_is_described_and_mapped():
    table = hostile_table(120).drop(columns="review")
    model = ClusterModel(clusterer=Clusterer("kmeans", 2)).fit(table)
    blueprint = describe_model(model, "kmeans-k2")
    featurized = [c for b in blueprint["blocks"] for c in b["columns"]]
    assert sorted(featurized + [d["column"] for d in blueprint["dropped"]]) == sorted(table.columns)
    assert blueprint["clusterer"]["sample_note"] == "fitted on 120 rows"
    placed = cluster_map(model, table, model.transform(table))
    assert placed.points["row_id"].tolist() == table["customer_id"].tolist()


def test_a_run_without_blueprint_files_is_described_from_its_models(run, tmp_path):
    folder, manifest, _, _, _ = run
    model_id = "gmm-k3"
    path = f"models/{model_id}/{BLUEPRINT_FILE}"
    published = folder.read_json(path, manifest)
    without = manifest.model_copy(update={"files": {k: v for k, v in manifest.files.items() if k != path}})
    assert run_blueprint(folder, without, model_id) == published
    with pytest.raises(InputValidationError, match="no model 'kmeans-k99'"):
        run_blueprint(folder, manifest, "kmeans-k99")


def test_diagram_escapes_hostile_names_and_levels(run):
    folder, manifest, _, _, _ = run
    drawn = svg.blueprint_diagram(blueprints(folder, manifest)[manifest.top_model])
    root = ET.fromstring(drawn)  # well-formed: nothing from the data opened an element
    assert {element.tag.rsplit("}", 1)[-1] for element in root.iter()} <= {"svg", "g", "rect", "text", "path"}
    texts = " ".join(element.text or "" for element in root.iter())
    tips = "\n".join(element.get("data-tip", "") for element in root.iter())
    assert HOSTILE_COLUMN in texts and HOSTILE_COLUMN in tips and HOSTILE_LEVEL in tips
    assert "<script" not in drawn and "&lt;script&gt;" in drawn
    nodes = [g for g in root.iter() if g.get("class") == "node"]
    blocks = len(blueprints(folder, manifest)[manifest.top_model]["blocks"])
    assert len(nodes) == 2 * blocks + 1 + 3  # inputs and featurizer per block, dropped, reducer, clusterer, assignment


def test_tree_and_markdown_show_every_stage(run):
    folder, manifest, _, _, _ = run
    blueprint = blueprints(folder, manifest)["ward-k3"]
    lines = format_tree(blueprint_tree(blueprint))
    assert lines[0] == "blueprint of ward-k3" and lines[1].startswith("  blocks -> ")
    assert any(line.startswith("  reducer: PCA, ") for line in lines)
    assert any(line.startswith("  clusterer: ward (AgglomerativeClustering), k=3") for line in lines)
    assert any("new rows: inductive k-NN" in line for line in lines)
    assert sum(HOSTILE_COLUMN in line for line in lines) == 1
    markdown = markdown_tree(blueprint_tree(blueprint, max_columns=3))
    assert "<" not in markdown and "&lt;script&gt;alert\\(1\\)&lt;/script&gt;" in markdown
    assert "more columns" in markdown
    summary = runs.summary_markdown(manifest, folder.leaderboard(manifest), blueprint)
    assert "## Blueprint" in summary and "clusterer: ward" in summary


def test_map_draws_one_mark_per_sampled_row_in_its_cluster_colour(run):
    folder, manifest, inputs, _, _ = run
    model = load_model(folder.url(f"models/{manifest.top_model}"))
    X = folder.features(manifest).full_matrix()
    placed = cluster_map(model, inputs.frame, X, max_rows=120, random_state=1)
    points = placed.points
    assert len(points) == 120 and placed.total_rows == len(inputs.frame)
    assert points["x"].between(0, 1).all() and points["y"].between(0, 1).all()
    assert points["row_id"].tolist() == inputs.frame["customer_id"].iloc[points["row"]].tolist()
    assert (points["cluster"].to_numpy() == model.pipeline_[-1].predict(X[points["row"]])).all()
    clusters = sorted(points["cluster"].unique().tolist())
    drawn = svg.scatter_map([(p.x, p.y, svg.cluster_colour(p.cluster, clusters), f"row {p.row_id}")
                             for p in points.itertuples()])
    circles = [c for c in ET.fromstring(drawn).iter() if c.tag.endswith("circle")]
    assert len(circles) == 120
    assert [c.get("fill") for c in circles] == [svg.cluster_colour(c, clusters) for c in points["cluster"]]
    first_values = dict(points["values"].iloc[0])
    assert list(first_values)[:2] == ["age", "income_k"]


def test_map_projection_choices_are_checked(run):
    folder, manifest, inputs, _, _ = run
    X = folder.features(manifest).full_matrix()
    # One OpenMP thread: t-SNE of 60 rows took ~20 s here instead of ~3 s once torch's own OpenMP runtime was
    # loaded by an earlier test of the session.
    with threadpool_limits(limits=1):
        placed = cluster_map(load_model(folder.url("models/kmeans-k3")), inputs.frame, X, projection="tsne",
                             max_rows=60)
    assert placed.projection == "tsne" and placed.explained_variance is None and len(placed.points) == 60
    assert placed.points[["x", "y"]].stack().between(0, 1).all()
    with pytest.raises(InputValidationError, match="unknown map projection"):
        check_projection("mds")
    try:
        import umap  # noqa: F401
    except ImportError:
        with pytest.raises(InputValidationError, match="umap-learn"):
            check_projection("umap")
    else:
        check_projection("umap")
