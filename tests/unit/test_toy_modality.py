"""A new modality is one declaration: "hex colour" columns (#a1b2c3), added to the registry at run time.

Everything the modality needs is in this file: its inference rule, its check, its
featurizer, its insight profile and its report cell. Nothing else in clusterflow
names it.
"""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import adjusted_rand_score
from sklearn.preprocessing import FunctionTransformer

import clusterflow
from clusterflow import modalities
from clusterflow.errors import InputValidationError
from clusterflow.explain import column_reports
from clusterflow.modalities.base import ColumnCheck, Modality
from clusterflow.roles import RoleDecision, infer_roles, is_missing

HEX = r"^#[0-9a-fA-F]{6}$"


def _hex_colour(name: str, values: pd.Series, present: pd.Series) -> RoleDecision | None:
    if present.empty or pd.api.types.is_numeric_dtype(values):
        return None
    share = present.astype(str).str.match(HEX).mean()
    return RoleDecision(name, "colour", f"{share:.0%} of values are #rrggbb colours") if share >= 0.95 else None


def _rgb(frame: pd.DataFrame) -> np.ndarray:
    """Each colour as red, green, blue in [0, 1]; a missing colour is mid grey."""
    columns = []
    for name in frame.columns:
        text = frame[name].astype("string").where(~is_missing(frame[name]), "#808080")
        columns += [text.str.slice(i, i + 2).map(lambda h: int(h, 16) / 255).to_numpy(float) for i in (1, 3, 5)]
    return np.column_stack(columns)


def _mean_colour(frame: pd.DataFrame, column: str, labels: np.ndarray, distances: np.ndarray, seed: int) -> dict:
    rgb = _rgb(frame[[column]])
    groups = [("all", np.ones(len(labels), bool))] + [(str(c), labels == c) for c in np.unique(labels)]
    stats = {key: {"rows": int(mask.sum()), "missing": float(is_missing(frame[column])[mask].mean()),
                   "mean": "#" + "".join(f"{round(v * 255):02x}" for v in rgb[mask].mean(axis=0))}
             for key, mask in groups}
    return {"kind": "colour", "stats": stats}


def _swatch(profile: dict, key: str, clusters: list, images) -> str:
    mean = profile["stats"][key]["mean"]
    return f'<span class="colour-swatch" style="background:{mean}">{mean}</span>'


def _channel_names(transformer, names) -> list[str]:
    return [f"{c}:{channel}" for c in names for channel in "rgb"]


def _featurizer(columns: list[str], options) -> FunctionTransformer:
    return FunctionTransformer(_rgb, feature_names_out=_channel_names)  # module-level functions: models pickle


HEX_COLOUR = Modality(
    "colour", ("colour",), _featurizer, "red, green and blue in [0, 1]",
    rules=(_hex_colour,),
    checks={"colour": (ColumnCheck(lambda s: is_missing(s) | s.astype("string").str.match(HEX).fillna(False),
                                   "hex_colour", "values are not #rrggbb colours",
                                   "write each colour as # and six hex digits, or blank it"),)},
    profile=_mean_colour, report_cell=_swatch,
)


@pytest.fixture
def colours():
    modalities.register(HEX_COLOUR)
    yield
    modalities.unregister("colour")


def _paint(n: int = 200, seed: int = 0) -> tuple[pd.DataFrame, np.ndarray]:
    """Reds and blues, and a column of noise."""
    rng = np.random.default_rng(seed)
    planted = rng.integers(0, 2, n)
    red = np.where(planted == 0, rng.integers(200, 256, n), rng.integers(0, 40, n))
    blue = np.where(planted == 0, rng.integers(0, 40, n), rng.integers(200, 256, n))
    shades = [f"#{r:02x}{g:02x}{b:02x}" for r, g, b in zip(red, rng.integers(0, 60, n), blue)]
    return pd.DataFrame({"shade": shades, "noise": rng.normal(size=n)}), planted


def test_a_registered_modality_infers_checks_featurizes_profiles_and_reports(colours, tmp_path):
    table, planted = _paint()
    assert {d.column: d.role for d in infer_roles(table)} == {"shade": "colour", "noise": "numeric"}

    clustering = clusterflow.Clustering(k=[2], algorithms=["kmeans"], weights={"colour": 4.0}).fit(table)
    assert clustering.roles_["shade"] == "colour"
    assert set(clustering.leaderboard_["modalities"]) == {"numeric+colour"}
    assert adjusted_rand_score(planted, clustering.labels_) == pytest.approx(1.0)
    reports = {r.column: r for r in column_reports(table, infer_roles(table), clustering.best_model_.featurizer)}
    assert reports["shade"].featurization == "red, green and blue in [0, 1]" and reports["shade"].width == 3

    html = (tmp_path / "report.html")
    clustering.report(str(html))
    assert html.read_text().count('class="colour-swatch"') == 3  # all rows, then each of the two clusters

    broken = table.assign(shade=table["shade"].where(table.index != 7, "#zz0000"))
    with pytest.raises(InputValidationError) as excinfo:
        clusterflow.Clustering(k=[2], roles={"shade": "colour"}).fit(broken)
    [problem] = excinfo.value.problems
    assert (problem.column, problem.rows, problem.rule) == ("shade", (7,), "values are not #rrggbb colours")
    assert "six hex digits" in problem.hint


def test_without_the_registration_the_column_is_only_strings():
    table, _ = _paint()
    assert {d.column: d.role for d in infer_roles(table)}["shade"] == "id"  # unique strings without spaces: a key
    with pytest.raises(InputValidationError, match="unknown role 'colour'"):
        infer_roles(table, {"shade": "colour"})
