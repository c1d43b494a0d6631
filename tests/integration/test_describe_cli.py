"""`clusterflow describe` through the installed command."""
from __future__ import annotations

import os
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor

import pytest

from clusterflow.model_description import BLUEPRINT_FILE, blueprint_tree, format_tree
from tests.hostile_run import publish_hostile_run

CLUSTERFLOW = os.path.join(os.path.dirname(sys.executable), "clusterflow")


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    return publish_hostile_run(tmp_path_factory.mktemp("described"))


def test_describe_command_prints_the_tree_and_refuses_an_unknown_model(run):
    folder, manifest, _, _, _ = run
    published = folder.read_json(f"models/ward-k3/{BLUEPRINT_FILE}", manifest)
    with ThreadPoolExecutor(max_workers=2) as pool:  # each command is mostly start-up: both start at once
        done, refused = pool.map(lambda model: subprocess.run([CLUSTERFLOW, "describe", folder.uri, "--model", model],
                                                              capture_output=True, text=True, timeout=120),
                                 ("ward-k3", "kmeans-k99"))
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines() == format_tree(blueprint_tree(published))
    assert refused.returncode == 2
    assert "no model 'kmeans-k99'" in refused.stderr and "models are: " in refused.stderr
    assert "Traceback (most recent call last)" not in refused.stdout + refused.stderr
