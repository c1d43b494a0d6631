"""Every estimator of the core through scikit-learn's own estimator checks.

Where an estimator cannot pass a check, the reason is written next to it: the
column featurizers take DataFrames of one kind of column (labels, dates, locations,
image paths, texts), while the checks feed bare numeric arrays. Such a check must still
fail (it is reported as xfailed); one that starts to pass fails the test, so the list
stays true.
"""
from __future__ import annotations

import unittest

import pytest
from sklearn.utils.estimator_checks import parametrize_with_checks
from threadpoolctl import threadpool_limits

from clusterflow import Clustering, ClusterModel
from clusterflow.algorithms import Clusterer, ProjectedHDBSCAN
from clusterflow.modalities.base import TotalVarianceScaler
from clusterflow.modalities.categorical import CategoricalEncoder
from clusterflow.modalities.datetime import DatetimeFeaturizer
from clusterflow.modalities.geo import GeoFeaturizer
from clusterflow.modalities.image import ImageFeaturizer
from clusterflow.modalities.numeric import SpreadScaler
from clusterflow.modalities.text import TfidfText

TEN_ROWS = "a table needs at least 10 rows; the error says so as an input problem, not in scikit-learn's words"
NUMBERS = "takes a DataFrame of {} columns; the check passes a numeric array"
ARRAY_CHECKS = [
    "check_complex_data", "check_dict_unchanged", "check_dont_overwrite_parameters", "check_dtype_object",
    "check_estimator_sparse_array", "check_estimator_sparse_matrix", "check_estimator_sparse_tag",
    "check_estimators_dtypes", "check_estimators_empty_data_messages", "check_estimators_fit_returns_self",
    "check_estimators_nan_inf", "check_estimators_overwrite_params", "check_estimators_pickle",
    "check_f_contiguous_array_estimator", "check_fit1d", "check_fit2d_1feature", "check_fit2d_1sample",
    "check_fit2d_predict1d", "check_fit_check_is_fitted", "check_fit_idempotent", "check_fit_score_takes_y",
    "check_methods_sample_order_invariance", "check_methods_subset_invariance", "check_n_features_in",
    "check_n_features_in_after_fitting", "check_pipeline_consistency", "check_positive_only_tag_during_fit",
    "check_readonly_memmap_input", "check_transformer_data_not_an_array", "check_transformer_general",
    "check_transformer_preserve_dtypes",
]
COLUMN_KINDS = {CategoricalEncoder: "label", DatetimeFeaturizer: "date/time", GeoFeaturizer: "location",
                ImageFeaturizer: "image-path"}
TEXT = "takes text columns: a numeric array is read as texts of digits, and {}"
TEXT_CHECKS = {
    "check_complex_data": TEXT.format("complex numbers become text too"),
    "check_dtype_object": TEXT.format("so are objects"),
    "check_estimators_dtypes": TEXT.format("digits alone hold no words to weigh"),
    "check_estimators_empty_data_messages": TEXT.format("an empty table raises an input problem"),
    "check_estimators_nan_inf": TEXT.format("NaN is a missing text, with its own flag"),
    "check_estimator_sparse_array": TEXT.format("sparse input is not a table of texts"),
    "check_estimator_sparse_matrix": TEXT.format("sparse input is not a table of texts"),
    "check_fit1d": TEXT.format("a 1-D array is one column of texts"),
    "check_fit2d_1sample": TEXT.format("one text has no vocabulary; the error says so as an input problem"),
    "check_fit2d_predict1d": TEXT.format("a 1-D array is one column of texts"),
    "check_transformer_data_not_an_array": TEXT.format("an array-like that is not an array is not a table"),
}
HDBSCAN_SMALL = "hdbscan's approximate_predict raises KeyError on 20-row fits where every point is noise"


def expected_failures(estimator) -> dict[str, str]:
    if type(estimator) in COLUMN_KINDS:
        return {check: NUMBERS.format(COLUMN_KINDS[type(estimator)]) for check in ARRAY_CHECKS}
    if isinstance(estimator, TfidfText):
        return TEXT_CHECKS
    if isinstance(estimator, ProjectedHDBSCAN):
        return {"check_fit2d_1sample": "hdbscan needs more samples than min_samples and says so in its words",
                **{check: HDBSCAN_SMALL for check in ("check_estimators_dtypes", "check_methods_sample_order_invariance",
                                                      "check_methods_subset_invariance", "check_dict_unchanged")}}
    if isinstance(estimator, (ClusterModel, Clustering)):
        return {"check_fit2d_1sample": TEN_ROWS}
    return {}


def fails(check, estimator) -> bool:
    """Whether the check raises (a check that skips itself still skips)."""
    try:
        check(estimator)
    except unittest.SkipTest:
        raise
    except Exception:
        return True
    return False


# SentenceEmbedder is not run here: each of its checks loads and runs the text model (~130 s in all).
# It shares TfidfText's column handling, and tests/unit/test_text.py covers its behaviour.
@parametrize_with_checks([
    ClusterModel(), Clustering(k=[2, 3], algorithms=["kmeans"]), Clusterer(n_clusters=3),
    ProjectedHDBSCAN(min_cluster_size=5, min_samples=5), TotalVarianceScaler(), SpreadScaler(), TfidfText(n_components=2),
    CategoricalEncoder(), DatetimeFeaturizer(), GeoFeaturizer(), ImageFeaturizer(),
])
def test_scikit_learn_estimator_checks(estimator, check):
    reason = expected_failures(estimator).get(check.func.__name__)
    # One BLAS/OpenMP thread: the checks fit hundreds of tiny models, where starting threads costs more
    # than it saves (several times more once torch's own OpenMP runtime is loaded by the text tests).
    with threadpool_limits(limits=1):
        if reason is None:
            check(estimator)
            return
        failed = fails(check, estimator)
    # An expected failure is reported here, outside the check's frames: letting it propagate made pytest
    # format its deep traceback (parsing scikit-learn's sources), ~0.3 s for each of 150 expected failures.
    if failed:
        pytest.xfail(reason)
    pytest.fail(f"{check.func.__name__} passes although expected to fail ({reason}): take it off the list")
