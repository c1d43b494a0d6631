"""Text embedding over the Dask workers: the same embeddings as in-process, the model loaded once per worker."""
from __future__ import annotations

import numpy as np
import pandas as pd
from distributed import Client

from clusterflow.modalities import text
from clusterflow.modalities.text import SentenceEmbedder
from clusterflow.samples import reviews


def test_texts_are_embedded_on_the_workers_like_in_process(dask_address):
    frame = pd.DataFrame({"review": reviews(120, seed=6)["review"]})
    here = SentenceEmbedder(parallel_min_texts=10).fit(frame).transform(frame)
    embedder = SentenceEmbedder(parallel_min_texts=10, batch_size=16).fit(frame)
    with Client(dask_address) as client:
        client.run(text._WORKER_ENCODERS.clear)
        on_workers = embedder.transform(frame)
        loaded = client.run(lambda: len(text._WORKER_ENCODERS))
    np.testing.assert_allclose(on_workers, here, atol=1e-5)
    assert sum(loaded.values()) >= 1 and max(loaded.values()) == 1  # one model per worker, reused by its chunks
    assert embedder.n_texts_encoded_ == frame["review"].nunique()
