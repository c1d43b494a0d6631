"""Geospatial columns: WKT points, or latitude + longitude pairs, as points on the unit sphere.

A location becomes x, y, z on the unit sphere, so that straight-line distances
between features follow distances on the globe (no seam at the antimeridian, no
squeezing near the poles). All locations of a table form one ``geo`` block.
"""
from __future__ import annotations

import re

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.utils.validation import check_is_fitted

from ..roles import MEDIA_FRACTION, NUMERIC_PARSE_FRACTION, RoleDecision, as_numbers, is_missing, non_numeric_rows
from .base import ColumnCheck, FeaturizeOptions, Modality, require_columns

_NUMBER = r"[-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?"
WKT_POINT = re.compile(rf"^\s*POINT\s*(?:Z\s*|M\s*|ZM\s*)?\(\s*({_NUMBER})\s+({_NUMBER})(?:\s+{_NUMBER}){{0,2}}\s*\)\s*$",
                       re.IGNORECASE)


def parse_points(values: pd.Series) -> pd.DataFrame:
    """Longitude and latitude of WKT ``POINT (lon lat)`` values; NaN where missing or malformed."""
    text = values.astype("string").where(~is_missing(values))
    parts = text.str.extract(WKT_POINT)
    return pd.DataFrame({"longitude": pd.to_numeric(parts[0]), "latitude": pd.to_numeric(parts[1])},
                        index=values.index).astype(float)


def malformed_points(values: pd.Series) -> pd.Series:
    """Present values that are not a WKT ``POINT (lon lat)``."""
    return ~is_missing(values) & parse_points(values)["latitude"].isna()


def out_of_range(latitude: pd.Series, longitude: pd.Series) -> pd.Series:
    """Coordinates outside latitude [-90, 90] or longitude [-180, 180] (missing ones are not)."""
    return (latitude.abs() > 90) | (longitude.abs() > 180)


def unit_sphere(latitude: np.ndarray, longitude: np.ndarray) -> np.ndarray:
    """Degrees to x, y, z on the unit sphere, shape (n, 3); NaN stays NaN."""
    lat, lon = np.radians(latitude), np.radians(longitude)
    return np.column_stack([np.cos(lat) * np.cos(lon), np.cos(lat) * np.sin(lon), np.sin(lat)])


class GeoFeaturizer(TransformerMixin, BaseEstimator):
    """Locations as unit-sphere x, y, z, with a missing flag per location.

    Each location's x, y, z are centred and scaled together (one factor, so
    distances keep their shape) to a total variance of one; a missing location
    takes the training mean.

    Parameters
    ----------
    points : list of str, default=()
        Columns of WKT ``POINT (lon lat)`` values.
    latitudes, longitudes : list of str, default=()
        Latitude and longitude columns in degrees, paired in order (the i-th
        latitude with the i-th longitude).

    Attributes
    ----------
    mean_ : ndarray of shape (n_locations * 3,)
        Training mean of each location's x, y, z (also the value of missing locations).
    scale_ : ndarray of shape (n_locations,)
        The factor of each location's x, y, z.

    Examples
    --------
    >>> import pandas as pd
    >>> from clusterflow.modalities.geo import GeoFeaturizer
    >>> shops = pd.DataFrame({"lat": [48.85, 40.71, -33.87], "lon": [2.35, -74.0, 151.21]})
    >>> GeoFeaturizer(latitudes=["lat"], longitudes=["lon"]).fit_transform(shops).shape
    (3, 4)
    """

    _parameter_constraints: dict = {"points": [list, tuple], "latitudes": [list, tuple], "longitudes": [list, tuple]}

    def __init__(self, points=(), latitudes=(), longitudes=()):
        self.points = points
        self.latitudes = latitudes
        self.longitudes = longitudes

    def fit(self, X, y=None):
        """Learn each location's centre and scale on ``X``."""
        self._validate_params()
        self._check_columns(X)
        self.feature_names_in_ = np.asarray([str(c) for c in X.columns], dtype=object)
        self.n_features_in_ = len(self.feature_names_in_)
        xyz = self._locations(X)
        present = ~np.isnan(xyz)
        counts = np.maximum(present.sum(axis=0), 1)
        self.mean_ = np.where(present, xyz, 0.0).sum(axis=0) / counts
        variance = np.where(present, (xyz - self.mean_) ** 2, 0.0).sum(axis=0) / counts
        total = variance.reshape(-1, 3).sum(axis=1)
        self.scale_ = np.where(total > 0, 1.0 / np.sqrt(np.where(total > 0, total, 1.0)), 0.0)
        return self

    def transform(self, X):
        """x, y, z of each location (scaled) followed by its missing flag."""
        check_is_fitted(self)
        self._check_columns(X)
        xyz = self._locations(X)
        missing = np.isnan(xyz[:, ::3])
        scaled = (np.where(np.isnan(xyz), self.mean_, xyz) - self.mean_) * np.repeat(self.scale_, 3)
        return np.hstack([scaled, missing.astype(float)])

    def get_feature_names_out(self, input_features=None):
        check_is_fitted(self)
        names = [f"{name}_{axis}" for name in self._names() for axis in "xyz"]
        return np.asarray(names + [f"{name}_missing" for name in self._names()], dtype=object)

    def _names(self) -> list[str]:
        # a pair's features are named after both columns, latitude first
        return list(self.points) + [f"{lat}:{lon}" for lat, lon in zip(self.latitudes, self.longitudes)]

    def _check_columns(self, X: pd.DataFrame) -> None:
        if len(self.latitudes) != len(self.longitudes):
            raise ValueError(f"latitudes {list(self.latitudes)} and longitudes {list(self.longitudes)} must pair up")
        require_columns(X, (*self.points, *self.latitudes, *self.longitudes))

    def _locations(self, X: pd.DataFrame) -> np.ndarray:
        blocks = []
        for column in self.points:
            parsed = parse_points(X[column])
            blocks.append(unit_sphere(parsed["latitude"].to_numpy(), parsed["longitude"].to_numpy()))
        for lat, lon in zip(self.latitudes, self.longitudes):
            blocks.append(unit_sphere(as_numbers(X[lat]).to_numpy(), as_numbers(X[lon]).to_numpy()))
        xyz = np.hstack(blocks)
        # a location is missing as a whole when any of its coordinates is
        located = ~np.isnan(xyz).reshape(len(X), -1, 3).any(axis=2)
        return np.where(np.repeat(located, 3, axis=1), xyz, np.nan)


# A whole word in any case (lat, PICKUP_LON), or a camel-case ending (pickupLat): "Miles_per_Gallon" is no longitude.
LATITUDE_NAME = re.compile(r"(?i:(^|[_\W])(lat|latitude)$)|[a-z](Lat|Latitude)$")
LONGITUDE_NAME = re.compile(r"(?i:(^|[_\W])(lon|lng|long|longitude)$)|[a-z](Lon|Lng|Long|Longitude)$")
COORDINATE_RANGES = {"latitude": (LATITUDE_NAME, 90.0), "longitude": (LONGITUDE_NAME, 180.0)}


def infer_wkt_point(name: str, values: pd.Series, present: pd.Series) -> RoleDecision | None:
    if pd.api.types.is_numeric_dtype(values) or present.empty:
        return None
    fraction = present.astype(str).str.match(r"^\s*POINT\b", case=False).mean()
    if fraction >= MEDIA_FRACTION:
        return RoleDecision(name, "geo", f"{fraction:.0%} of values are WKT points")
    return None


def infer_coordinate(name: str, values: pd.Series, present: pd.Series) -> RoleDecision | None:
    for role, (pattern, limit) in COORDINATE_RANGES.items():
        if pattern.search(name):
            numbers = as_numbers(present)
            in_range = (numbers.abs() <= limit).mean()
            if numbers.notna().mean() >= NUMERIC_PARSE_FRACTION and in_range >= MEDIA_FRACTION:
                return RoleDecision(name, role, f"named like a {role}, {in_range:.0%} of values in "
                                                f"[-{limit:g}, {limit:g}]")
    return None


def pair_coordinates(decisions: list[RoleDecision], inferred: set[str]) -> list[RoleDecision]:
    """Inferred latitudes and longitudes count only in pairs; an unpaired one is a plain number."""
    counts = {role: sum(d.role == role for d in decisions) for role in COORDINATE_RANGES}
    if counts["latitude"] == counts["longitude"]:
        return decisions
    return [
        RoleDecision(d.column, "numeric", f"named like a {d.role} but not paired with a "
                                          f"{({'latitude', 'longitude'} - {d.role}).pop()} column: a plain number")
        if d.role in COORDINATE_RANGES and d.column in inferred else d
        for d in decisions
    ]


def make_geo_featurizer(columns: list[str], options: FeaturizeOptions) -> GeoFeaturizer:
    role = dict(options.roles)
    return GeoFeaturizer(points=[c for c in columns if role[c] == "geo"],
                         latitudes=[c for c in columns if role[c] == "latitude"],
                         longitudes=[c for c in columns if role[c] == "longitude"])


def _coordinates_ok(values: pd.Series, limit: float) -> pd.Series:
    numbers = as_numbers(values)
    return ~non_numeric_rows(values) & ~(numbers.abs() > limit)


def _points_in_range(values: pd.Series) -> pd.Series:
    points = parse_points(values)
    return ~((points["latitude"].abs() > 90) | (points["longitude"].abs() > 180))


def geo_profile(frame: pd.DataFrame, column: str, labels: np.ndarray, distances: np.ndarray, seed: int) -> dict:
    """Profile of a WKT point column (a latitude/longitude pair is profiled as one location by the insights)."""
    from ..insights.profiles import coordinates, geo_profile

    return geo_profile(coordinates(frame, {"geo": column}), labels, distances, seed)


GEO = Modality(
    "geo", ("geo", "latitude", "longitude"), make_geo_featurizer,
    "unit-sphere x, y, z per location (WKT point or latitude + longitude pair), missing flag",
    early_rules=(infer_coordinate,), rules=(infer_wkt_point,), settle_roles=pair_coordinates,
    checks={
        "latitude": (ColumnCheck(lambda s: _coordinates_ok(s, 90.0), "latitude_range",
                                 "latitudes outside [-90, 90] or not numbers",
                                 "fix these values (degrees, latitude first in the pair), or blank them"),),
        "longitude": (ColumnCheck(lambda s: _coordinates_ok(s, 180.0), "longitude_range",
                                  "longitudes outside [-180, 180] or not numbers",
                                  "fix these values (degrees), or blank them"),),
        "geo": (ColumnCheck(lambda s: ~malformed_points(s), "wkt_point", "values are not WKT points `POINT (lon lat)`",
                            "write each value as POINT (longitude latitude), or blank it"),
                ColumnCheck(_points_in_range, "point_range",
                            "points outside latitude [-90, 90] or longitude [-180, 180]",
                            "WKT points are POINT (longitude latitude): check the order and the values")),
    },
    profile=geo_profile,
)
