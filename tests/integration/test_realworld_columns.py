"""Real-world columns through the command line: ``clusterflow inspect`` explains the roles and
writes an editable roles file, and a tweets-shaped table runs end to end in bounded memory.
"""
from __future__ import annotations

import threading
import time

import numpy as np
import pandas as pd
import psutil
import pytest

import clusterflow
from clusterflow.modalities.categorical import MAX_LEVELS
from clusterflow.roles import infer_roles, load_roles_file
from clusterflow.run_folder import RunFolder
from flows.cli import main
from tests.planted import EXPECTED_ROLES, realworld_table


def test_inspect_prints_the_table_and_writes_an_editable_roles_file(tmp_path, capsys):
    data = tmp_path / "orders.csv"
    realworld_table(8_000).to_csv(data, index=False)
    roles_file = tmp_path / "roles.yaml"
    assert main(["inspect", str(data), "--write-roles", str(roles_file)]) == 0
    printed = capsys.readouterr().out
    for column in EXPECTED_ROLES:
        assert column in printed
    written = load_roles_file(str(roles_file))
    assert written == {d.column: d.role for d in infer_roles(pd.read_csv(data))}
    assert "# boolean values" in roles_file.read_text()

    roles_file.write_text(roles_file.read_text().replace("product: categorical", "product: ignore"))
    assert main(["inspect", str(data), "--roles", str(roles_file)]) == 0
    assert "set in the roles file" in capsys.readouterr().out
    assert main(["inspect", str(data), "--write-roles", str(roles_file)]) == 2  # never overwrites the user's edits
    assert "product: ignore" in roles_file.read_text()


def tweets_table(n: int = 6_000, seed: int = 1) -> pd.DataFrame:
    """Shaped like a real tweets export: id, prose, Twitter's timestamp, 10 label columns, counts."""
    rng = np.random.default_rng(seed)
    zipf = lambda levels: rng.zipf(1.4, n) % levels  # noqa: E731 - a skewed level draw, like real authors
    topics = [
        "new phone battery lasts all day and the camera is great",
        "train delayed again this morning signal failure at the station",
        "match tonight what a goal in the last minute unbelievable",
        "recipe for lentil soup with lemon cumin and fresh bread",
    ]
    topic = rng.integers(0, len(topics), n)
    stamps = pd.Timestamp("2026-03-01", tz="UTC") + pd.to_timedelta(rng.integers(0, 90 * 86_400, n), unit="s")
    frame = pd.DataFrame({
        "id": rng.choice(10**15, n, replace=False) + 10**18,
        "text": [f"{topics[t]} {' '.join(rng.choice(topics[t].split(), 4))} @{rng.integers(1e6)}" for t in topic],
        "created_at": stamps.strftime("%a %b %d %H:%M:%S +0000 %Y"),
        "source": [f"Client {v}" for v in zipf(25)],
        "author": [f"user{v}" for v in zipf(2_500)],
        "lang": rng.choice(["en", "es", "de", "fr", "pt", "ja", "und"], n),
        "country": [f"C{v}" for v in zipf(60)],
        "city": [f"city{v}" for v in zipf(600)],
        "hashtag": [f"#tag{v}" for v in zipf(1_200)],
        "mention": [f"@acct{v}" for v in zipf(1_800)],
        "place_type": rng.choice(["city", "admin", "country", "poi"], n),
        "media_type": rng.choice(["none", "photo", "video", "gif"], n),
        "reply_to": [f"user{v}" if v % 3 else None for v in zipf(2_500)],
        "retweets": rng.poisson(3, n) * (topic + 1),
        "likes": rng.poisson(12, n) * (topic + 1),
        "replies": rng.poisson(1, n),
        "followers": rng.lognormal(6, 1.5, n).astype(int),
    })
    return frame


@pytest.mark.usefixtures("prefect_harness")
def test_tweets_shaped_table_runs_end_to_end_in_bounded_memory(tmp_path, dask_address, capsys):
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterKey

    data = tmp_path / "tweets.csv"
    table = tweets_table()
    table.to_csv(data, index=False)
    process = psutil.Process()
    run_uri = tmp_path / "run"
    peak = {"process": process.memory_info().rss}
    done = threading.Event()

    def sample() -> None:
        while not done.is_set():
            peak["process"] = max(peak["process"], process.memory_info().rss)
            time.sleep(0.005)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    try:
        code = main(["run", str(data), "--out", str(run_uri), "--k", "3", "5", "--algorithms", "kmeans",
                     "--text-featurizer", "tfidf", "--dask-address", dask_address])
    finally:
        done.set()
        sampler.join()
    printed = capsys.readouterr().out
    with capsys.disabled():
        print(f"\npeak RSS of the test process during the run: {peak['process'] / 2**20:.0f} MiB")
    assert code == 0 and peak["process"] < 2 * 2**30

    manifest = RunFolder(str(run_uri)).manifest()
    columns = {c["column"]: c for c in manifest.columns}
    assert list(columns) == list(table.columns)
    assert columns["id"]["role"] == "id" and columns["text"]["role"] == "text"
    assert columns["created_at"]["role"] == "datetime" and columns["created_at"]["details"]["unparseable"] == 0
    labels = ["source", "author", "lang", "country", "city", "hashtag", "mention", "place_type", "media_type",
              "reply_to"]
    assert all(columns[c]["role"] == "categorical" and columns[c]["width"] <= MAX_LEVELS for c in labels)
    assert columns["author"]["details"]["frequency"]
    author_row = next(line for line in printed.splitlines() if line.startswith("author "))
    assert "categorical" in author_row and author_row.rstrip().endswith(str(columns["author"]["width"]))
    assert manifest.features.featurized_width <= 400

    with get_client(sync_client=True) as client:
        [artifact] = client.read_artifacts(artifact_filter=ArtifactFilter(key=ArtifactFilterKey(any_=["run-summary-tweets"])),
                                           limit=1)
    assert "## Columns" in artifact.data and "| author | str | categorical |" in artifact.data
    assert "## Blueprint" in artifact.data and "- clusterer: kmeans" in artifact.data

    model = clusterflow.load_model(str(run_uri))
    new = tweets_table(20, seed=9)
    new["created_at"] = (pd.Timestamp("2027-06-01", tz="UTC") + pd.to_timedelta(np.arange(20), unit="h")).strftime(
        "%a %b %d %H:%M:%S +0000 %Y")
    new["author"] = [f"newcomer{i}" for i in range(20)]
    assigned = model.assign(new)
    assert assigned["id"].tolist() == new["id"].tolist() and assigned["cluster"].between(0, 4).all()
