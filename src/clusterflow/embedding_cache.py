"""A content-addressed store of embeddings on any fsspec location (local folder or s3://).

A key is the SHA-256 of (model id, text), so the same text embedded by the same
model is found again by any run, rerun or prediction that shares the store. Each
write adds one shard file, ``<root>/embeddings/<model id>/<digest>.npz``, in a
single call: concurrent writers (Dask workers, parallel runs) never overwrite each
other, and a reader sees a shard whole or not at all.
"""
from __future__ import annotations

import hashlib
import io
import posixpath

import fsspec
import numpy as np

SHARD_SUFFIX = ".npz"


def embedding_key(model_id: str, text: str) -> str:
    """The cache key of ``text`` embedded by ``model_id``."""
    return hashlib.sha256(f"{model_id}\0{text}".encode("utf-8", "surrogatepass")).hexdigest()


class EmbeddingCache:
    """Embeddings of one model, keyed by :func:`embedding_key`, kept in memory and in a store.

    Parameters
    ----------
    uri : str or None
        The run store cache root (a folder or fsspec URI); None keeps embeddings in
        memory only.
    model_id : str
        Names the model's folder in the store; keys include it too.
    storage_options : dict or None
        Passed to fsspec for ``uri``.

    Examples
    --------
    >>> cache = EmbeddingCache(None, "demo-model")
    >>> cache.put(["k1"], np.ones((1, 3), dtype=np.float32))
    >>> cache.get(["k1", "k2"])["k1"]
    array([1., 1., 1.], dtype=float32)
    """

    def __init__(self, uri: str | None, model_id: str, storage_options: dict | None = None):
        self.uri = uri
        self.model_id = model_id
        self.storage_options = storage_options
        self._vectors: dict[str, np.ndarray] = {}
        self._loaded: set[str] = set()
        if uri is not None:
            self.fs, root = fsspec.core.url_to_fs(uri, **(storage_options or {}))
            self.path = posixpath.join(root, "embeddings", model_id)

    def get(self, keys: list[str]) -> dict[str, np.ndarray]:
        """The vectors found for ``keys`` (in memory first, then in shards not read yet)."""
        if self.uri is not None and any(k not in self._vectors for k in keys):
            self._read_new_shards()
        return {k: self._vectors[k] for k in keys if k in self._vectors}

    def put(self, keys: list[str], vectors: np.ndarray) -> None:
        """Add vectors (one row per key) in memory and, with a store, as one new shard."""
        vectors = np.asarray(vectors, dtype=np.float32)
        self._vectors.update(zip(keys, vectors))
        if self.uri is None or not keys:
            return
        name = hashlib.sha256("".join(keys).encode()).hexdigest()[:32] + SHARD_SUFFIX
        buffer = io.BytesIO()
        np.savez(buffer, keys=np.array(keys, dtype="S64"), vectors=vectors)  # hex digests: ASCII
        self.fs.makedirs(self.path, exist_ok=True)
        self.fs.pipe_file(posixpath.join(self.path, name), buffer.getvalue())
        self._loaded.add(name)

    def _read_new_shards(self) -> None:
        self.fs.invalidate_cache(self.path)
        if not self.fs.isdir(self.path):
            return
        for full in sorted(self.fs.ls(self.path, detail=False)):
            name = posixpath.basename(full)
            if name.endswith(SHARD_SUFFIX) and name not in self._loaded:
                with np.load(io.BytesIO(self.fs.cat_file(full))) as shard:
                    self._vectors.update(zip(shard["keys"].astype(str).tolist(), shard["vectors"]))
                self._loaded.add(name)
