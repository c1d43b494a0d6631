"""The report end to end: written by the cluster flow, rebuilt by the CLI, opened offline in headless Chromium."""
from __future__ import annotations

import contextlib
import io
import os
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from clusterflow.insights import ImageSource, compute_insights
from clusterflow.report import render_report
from clusterflow.report.html import SECTIONS
from clusterflow.report.publish import report_images
from clusterflow.run_folder import RunFolder
from flows.cli import main
from flows.cluster import cluster
from tests.planted import image_model, write_planted_images

pytestmark = pytest.mark.usefixtures("prefect_harness")

XSS = "<script>window.__xss = 1</script>"
XSS_ATTRIBUTE = '"><img src=x onerror="window.__xss = 2">'
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync"]


def mixed_table(n: int = 500) -> pd.DataFrame:
    from clusterflow.samples import customers

    table = customers(n, seed=5)
    rng = np.random.default_rng(5)
    words = {"young-online": "app fast delivery discount", "family-store": "kids parking weekend aisle",
             "affluent-premium": "concierge premium lounge wine", "retired-occasional": "pension pharmacy quiet"}
    table["note"] = [" ".join(rng.choice(words[s].split(), 4)) for s in table["segment"]]
    table.loc[: n // 10, "plan"] = XSS_ATTRIBUTE  # a frequent level, listed in the insights
    table = table.rename(columns={"visits_per_month": XSS})  # a column name, shown in every section
    table["latitude"] = np.where(table["segment"] == "young-online", 52.5, 48.1) + rng.normal(0, 0.05, n)
    table["longitude"] = np.where(table["segment"] == "young-online", 13.4, 11.6) + rng.normal(0, 0.05, n)
    return table.drop(columns="segment")


@pytest.fixture(scope="module")
def mixed_cli_run(tmp_path_factory, dask_address) -> tuple[str, str]:
    """The mixed table through the CLI's `run` (in this process): the run folder and what the command printed."""
    folder = tmp_path_factory.mktemp("mixed")
    data = folder / "mixed.csv"
    mixed_table().to_csv(data, index=False)
    printed = io.StringIO()
    with contextlib.redirect_stdout(printed):
        code = main(["run", str(data), "--out", str(folder / "run"), "--k", "3", "4", "--algorithms", "kmeans,gmm",
                     "--text-featurizer", "tfidf", "--dask-address", dask_address])
    assert code == 0, printed.getvalue()
    return str(folder / "run"), printed.getvalue()


@pytest.fixture(scope="module")
def mixed_run(mixed_cli_run) -> str:
    return mixed_cli_run[0]


@pytest.fixture(scope="module")
def browser():
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path="/usr/bin/chromium", args=CHROMIUM_ARGS)
        yield browser
        browser.close()


def open_offline(browser, path: str):
    """Open a local HTML file with every network request refused and recorded; return page, errors, requests."""
    context = browser.new_context(viewport={"width": 1400, "height": 1000})
    page = context.new_page()
    errors, requests = [], []
    page.on("console", lambda message: errors.append(message.text) if message.type == "error" else None)
    page.on("pageerror", lambda error: errors.append(str(error)))

    def refuse_network(route):
        if route.request.url.startswith(("file:", "data:")):
            route.continue_()
        else:
            requests.append(route.request.url)
            route.abort()

    page.route("**/*", refuse_network)
    page.goto("file://" + os.path.abspath(path), wait_until="load")
    return page, errors, requests


def assert_not_blank(png: bytes) -> None:
    pixels = np.asarray(Image.open(io.BytesIO(png)).convert("RGB"), dtype=float)
    assert pixels.std() > 20
    assert len(np.unique(pixels.reshape(-1, 3), axis=0)) > 50


def test_run_publishes_report_and_insights_before_the_manifest(mixed_run):
    folder = RunFolder(mixed_run)
    manifest = folder.manifest()
    top = manifest.top_model
    assert manifest.report == "report.html" and manifest.insights == f"insights/{top}"
    board = pd.read_csv(f"{mixed_run}/leaderboard.csv")
    runners_up = board["model_id"].iloc[1:3].tolist()
    assert manifest.model_reports == {top: "report.html", **{m: f"reports/{m}.html" for m in runners_up}}
    for model_id in runners_up:
        assert folder.exists(f"reports/{model_id}.html") and folder.exists(f"insights/{model_id}/insights.json")
    for name in ("clusters.csv", "cluster_insights.csv", "feature_impact.csv", "modality_impact.csv",
                 "associations.csv", "associated_pairs.csv", "insights.json"):
        assert folder.exists(f"insights/{top}/{name}")
    last_write = max(os.path.getmtime(os.path.join(root, f)) for root, _, files in os.walk(mixed_run)
                     for f in files if f != "manifest.json")
    assert os.path.getmtime(os.path.join(mixed_run, "manifest.json")) >= last_write
    impact = pd.read_csv(io.BytesIO(folder.read(f"insights/{top}/feature_impact.csv", manifest)))
    assert set(impact["feature"]) >= {"age", "income_k", "channel", "plan", "note"}
    assert manifest.timings_seconds["insights_and_report"] > 0


def test_report_opens_offline_with_every_section_and_escapes_data(mixed_run, browser, tmp_path):
    page, errors, requests = open_offline(browser, os.path.join(mixed_run, "report.html"))
    assert errors == [] and requests == []
    for key in SECTIONS:
        assert page.locator(f"section#{key} h2").count() == 1, key
    assert page.evaluate("window.__xss") is None
    text = page.evaluate("document.body.textContent")
    assert XSS in text and XSS_ATTRIBUTE in text
    assert page.locator("#insights svg.map circle").count() > 100  # the latitude / longitude map
    assert page.locator("#blueprint svg g.node").count() >= 7  # 2 per block, then reducer, clusterer, new rows
    page.locator("#blueprint svg g.node").first.hover()
    assert XSS in page.inner_text("#tip")  # the numeric block's inputs, escaped
    marks = page.evaluate("Array.from(document.querySelectorAll('#map svg circle'))"
                          ".map(c => [c.getAttribute('fill'), c.getAttribute('data-tip').split(':')[0]])")
    assignments = pd.read_parquet(os.path.join(mixed_run, "assignments.parquet"))
    assert len(marks) == len(assignments)  # 500 rows: all on the map
    colour_of = {}
    for (fill, row), identifier, cluster in zip(marks, assignments.iloc[:, 0], assignments["cluster"]):
        assert row == f"row {identifier}"  # the id column leads the assignments
        colour_of.setdefault(cluster, fill)
        assert colour_of[cluster] == fill
    assert len(set(colour_of.values())) == len(colour_of)
    bar = page.locator("#impact svg g[data-tip]").first
    bar.hover()
    assert page.locator("#tip").is_visible() and "impact" in page.inner_text("#tip")
    assert_not_blank(page.screenshot(full_page=True))


def test_report_cli_rebuilds_any_model_as_the_next_revision(mixed_run, capsys):
    folder = RunFolder(mixed_run)
    before = folder.manifest()
    other = next(m for m in before.models if m != before.top_model)
    assert main(["report", mixed_run, "--model", other, "--associations", "cramers_v"]) == 0
    assert f"reports/{other}.html" in capsys.readouterr().out
    manifest = folder.manifest()
    assert manifest.revision == before.revision + 1 and manifest.model_reports[other] == f"reports/{other}.html"
    assert manifest.report == before.report and manifest.files["report.html"] == before.files["report.html"]
    html = folder.read(f"reports/{other}.html", manifest).decode()
    assert f"../insights/{other}/insights.json" in html and "Cramér" in html
    assert Path(mixed_run, "reports", f"{other}.html").read_text() == html  # the plain name has the current copy
    assert folder.exists(f"insights/{other}/insights.json")


def test_report_cli_refuses_an_unknown_model(mixed_run, capsys):
    assert main(["report", mixed_run, "--model", "kmeans-k99"]) == 2
    assert "no model 'kmeans-k99'" in capsys.readouterr().err


def test_cli_run_prints_the_report_path(mixed_cli_run):
    run, printed = mixed_cli_run
    assert f"Report: {run}/report.html" in printed


def test_failed_insights_publish_nothing(tmp_path, dask_address, monkeypatch):
    import clusterflow.report.publish as publish

    def broken(*args, **kwargs):
        raise RuntimeError("insights failed")

    monkeypatch.setattr(publish, "compute_insights", broken)
    data = tmp_path / "small.csv"
    mixed_table(200).drop(columns=["note"]).to_csv(data, index=False)
    with pytest.raises(RuntimeError, match="insights failed"):
        cluster(data=str(data), out=str(tmp_path / "run"), k=[3], algorithms=["kmeans"], dask_address=dask_address)
    assert not RunFolder(str(tmp_path / "run")).is_published()


def test_image_views_render_offline(mixed_run, browser, tmp_path):
    table = write_planted_images(tmp_path)
    model, X = image_model(table)
    insights = compute_insights(model, table, X, np.arange(40), model_id="kmeans-k2", max_activation_maps=2)
    images = report_images(insights, ImageSource())
    assert all(uri and uri.startswith("data:image/jpeg;base64,") for uri in images.thumbnails.values())
    folder = RunFolder(mixed_run)
    manifest = folder.manifest()
    path = tmp_path / "images.html"
    path.write_text(render_report(manifest, folder.leaderboard(manifest), insights, images))
    page, errors, requests = open_offline(browser, str(path))
    assert errors == [] and requests == []
    assert page.locator("#embeddings svg image").count() == 40
    assert page.locator("#activation svg.occlusion").count() == 2
    page.locator("#embeddings svg g[data-tip]").last.hover()  # the last drawn is on top
    assert "cluster 0:" in page.inner_text("#tip") and "cluster 1:" in page.inner_text("#tip")
    assert_not_blank(page.locator("#embeddings").screenshot())
