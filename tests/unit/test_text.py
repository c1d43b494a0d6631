"""Text featurizers on their own: one embedding per distinct text, missing and long texts, TF-IDF, bad models.

The all-MiniLM-L6-v2 model runs for real from its offline package.
"""
from __future__ import annotations

import numpy as np
import onnx
import pandas as pd
import pytest

from clusterflow.errors import InputValidationError
from clusterflow.modalities.onnx_encoder import export_root
from clusterflow.modalities.text import SentenceEmbedder, TfidfText


def test_distinct_texts_are_embedded_once():
    texts = ["The battery died after an hour.", "Lovely pasta, slow service.", "Great hotel by the beach."]
    frame = pd.DataFrame({"title": [texts[0], texts[1], texts[0], texts[2]] * 3,
                          "body": [texts[1], texts[2], "A new text only in this column.", texts[0]] * 3})
    embedder = SentenceEmbedder().fit(frame)
    Z = embedder.transform(frame)
    assert embedder.n_texts_encoded_ == 4
    title = Z[:, :384]
    np.testing.assert_array_equal(title[0], title[2])
    np.testing.assert_array_equal(title[0], Z[3, 385:769])  # same text, other column
    embedder.transform(frame)
    assert embedder.n_texts_encoded_ == 4
    assert embedder.n_cache_hits_ == 4


def test_missing_and_empty_texts_are_missing_values_and_long_texts_are_truncated():
    long_text = " ".join(["the charger overheats and the screen flickers"] * 80)  # far beyond 256 tokens
    frame = pd.DataFrame({"review": ["Soup was cold.", None, "", "   ", np.nan, "n/a", long_text,
                                     long_text + " but the speaker is great" * 20]})
    embedder = SentenceEmbedder().fit(frame)
    Z = embedder.transform(frame)
    missing = np.array([False, True, True, True, True, True, False, False])
    np.testing.assert_array_equal(Z[:, -1], missing.astype(float))
    assert not Z[missing, :-1].any()
    assert (np.linalg.norm(Z[~missing, :-1], axis=1) > 0.99).all()
    assert embedder.max_seq_length_ == 256
    np.testing.assert_allclose(Z[6, :-1], Z[7, :-1], atol=1e-5)  # both cut at the same first 256 tokens


def test_onnx_backends_embed_like_torch_from_one_local_export():
    frame = pd.DataFrame({"review": ["The battery died after an hour.", "Lovely pasta, slow service.", None,
                                     "Great hotel by the beach, noisy at night."]})
    fitted = {b: SentenceEmbedder(backend=b).fit(frame) for b in ("torch", "onnx", "onnx-int8")}
    Z = {b: e.transform(frame) for b, e in fitted.items()}
    cosine = {b: (Z[b][[0, 1, 3], :-1] * Z["torch"][[0, 1, 3], :-1]).sum(axis=1) for b in Z}
    assert cosine["onnx"].min() > 0.9999 and cosine["onnx-int8"].min() > 0.85
    np.testing.assert_array_equal(Z["onnx"][:, -1], [0, 0, 1, 0])
    assert fitted["onnx"].model_id_ == fitted["torch"].model_id_  # same embeddings: they share cache entries
    assert fitted["onnx-int8"].model_id_ == fitted["torch"].model_id_ + "-int8"
    assert fitted["onnx"].summary()["backend"] == "onnx" and fitted["onnx"].device_ == "cpu"
    (export,) = export_root().glob("*/model.fused.onnx")
    assert "Attention" in {node.op_type for node in onnx.load(str(export), load_external_data=False).graph.node}
    written = export.stat().st_mtime_ns
    SentenceEmbedder(backend="onnx").fit(frame).transform(frame)
    assert export.stat().st_mtime_ns == written  # exported once per model digest

    published_before_backends = fitted["torch"].__getstate__()
    del published_before_backends["backend"]
    restored = SentenceEmbedder.__new__(SentenceEmbedder)
    restored.__setstate__(published_before_backends)
    assert restored.backend == "torch"


@pytest.mark.parametrize("broken", ["missing-folder", "garbage-folder"])
def test_model_that_cannot_load_names_the_tfidf_alternative(broken, tmp_path):
    model = tmp_path / broken
    if broken == "garbage-folder":
        model.mkdir()
        (model / "config.json").write_text("{not json")
        (model / "modules.json").write_text("[]")
    with pytest.raises(InputValidationError, match="--text-featurizer tfidf") as raised:
        SentenceEmbedder(model=str(model)).fit(pd.DataFrame({"review": ["fine"]}))
    assert "column 'review'" in str(raised.value) and str(model) in str(raised.value)


def test_tfidf_marks_missing_texts_and_names_a_column_without_words():
    frame = pd.DataFrame({"note": ["red apple pie", "green apple tart", None, "fast red car", "blue car", ""]})
    Z = TfidfText(n_components=2).fit(frame).transform(frame)
    np.testing.assert_array_equal(Z[:, -1], [0, 0, 1, 0, 0, 1])
    assert not Z[[2, 5], :-1].any()
    with pytest.raises(InputValidationError, match="column 'note'"):
        TfidfText().fit(pd.DataFrame({"note": ["the and of", "it is", "", None]}))
