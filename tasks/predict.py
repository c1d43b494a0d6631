"""Thin Prefect tasks for scoring new data with a published model."""
from __future__ import annotations

from prefect import task
from prefect.cache_policies import NO_CACHE

from clusterflow import predicting
from clusterflow.model import load_model


@task(cache_policy=NO_CACHE, retries=2, retry_delay_seconds=2)
def load_published_model(model_uri: str, storage_options: dict | None):
    return load_model(model_uri, storage_options)


@task(cache_policy=NO_CACHE)
def assign_in_memory(model, data_uri: str, out_uri: str, storage_options: dict | None, image_root: str | None = None,
                     on_bad_image: str = "error") -> int:
    return predicting.predict_file(model, data_uri, out_uri, storage_options, image_root, on_bad_image)


@task(cache_policy=NO_CACHE)
def assign_by_partition(model, data_uri: str, out_uri: str, blocksize: str, storage_options: dict | None,
                        image_root: str | None = None, on_bad_image: str = "error") -> int:
    return predicting.predict_partitioned(model, data_uri, out_uri, blocksize=blocksize,
                                          storage_options=storage_options, image_root=image_root,
                                          on_bad_image=on_bad_image)
