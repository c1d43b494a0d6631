"""The run parameters are declared once: the CLI, the cluster flow (Prefect's form) and prefect.yaml use it."""
from __future__ import annotations

from pathlib import Path

import typer.main
import yaml
from prefect.utilities.callables import parameter_schema

from clusterflow.parameters import RunParameters
from flows.cli import app
from flows.cluster import cluster
from flows.predict import predict
from flows.recluster import recluster

PREFECT_YAML = Path(__file__).resolve().parents[2] / "prefect.yaml"
FLOWS = {"flows/cluster.py:cluster": cluster, "flows/predict.py:predict": predict,
         "flows/recluster.py:recluster": recluster}


def test_the_cluster_flow_form_carries_the_models_defaults_and_descriptions():
    properties = parameter_schema(cluster).model_dump()["properties"]
    for name in ("k", "seed", "validation_fraction", "mode", "text_featurizer", "on_bad_image"):
        field = RunParameters.model_fields[name]
        assert properties[name]["description"] == field.description
        assert properties[name].get("default") == field.default


def test_the_cli_options_are_the_models_fields():
    run = typer.main.get_command(app).commands["run"]
    options = {p.name: p for p in run.params}
    for name in ("k", "seed", "validation_fraction", "mode", "weights", "text_model", "image_root"):
        field = RunParameters.model_fields[name]
        assert options[name].help == field.description
        assert f"--{name.replace('_', '-')}" in options[name].opts
    assert options["seed"].default == RunParameters.model_fields["seed"].default


def test_every_deployment_parameter_is_a_parameter_of_its_flow():
    for deployment in yaml.safe_load(PREFECT_YAML.read_text())["deployments"]:
        flow = FLOWS[deployment["entrypoint"]]
        known = set(parameter_schema(flow).model_dump()["properties"])
        assert set(deployment.get("parameters", {})) <= known, deployment["name"]
        for trigger in deployment.get("triggers", []):
            assert set(trigger.get("parameters", {})) <= known, deployment["name"]
