"""A sentence-transformers model run by onnxruntime: exported locally, once per model digest.

sentence-transformers' own ONNX backend needs optimum-onnx, whose releases require
transformers < 4.58 while sentence-transformers 6.2 requires transformers 5: the two cannot
be installed together. So the export is done here with ``torch.onnx.export`` from the local
model (no network), for models made of a Transformer, a mean or CLS Pooling and an optional
Normalize (all-MiniLM-L6-v2 and most sentence-transformers text models), with the model's
eager attention: its MatMul/Softmax pattern is the one onnxruntime's transformer optimizer
fuses. The float backend runs that optimizer's output (attention, LayerNorm and GELU fused into
single kernels: the same embeddings, less CPU per text); the int8 variant is onnxruntime's
dynamic quantization of the plain export.

Exports live under ``$CLUSTERFLOW_ONNX_CACHE`` (default ``~/.cache/clusterflow/onnx``) in a
folder named by the model id (which carries a digest of the model's files), so a model changed
in place is exported again. Files are written under a temporary name and renamed, so processes
exporting at once never read a half-written file.
"""
from __future__ import annotations

import json
import os
import shutil
import tempfile
import warnings
from pathlib import Path

import numpy as np

from ..errors import InputValidationError, Problem

ONNX_CACHE_ENV = "CLUSTERFLOW_ONNX_CACHE"
PLAIN_EXPORT = "model.eager.onnx"  # not the older "model.onnx": that one was traced with SDPA attention, which does not fuse
EXPORT_FILES = {False: "model.fused.onnx", True: "model.int8.onnx"}
SETTINGS_FILE = "encoder.json"
POOLING_MODES = ("mean", "cls")


def export_root() -> Path:
    return Path(os.environ.get(ONNX_CACHE_ENV) or Path.home() / ".cache" / "clusterflow" / "onnx")


class OnnxSentenceEncoder:
    """Encode texts as the sentence-transformers model at ``source`` does, with onnxruntime.

    Parameters
    ----------
    source : str
        A local sentence-transformers model folder (or a name in the local Hugging Face cache).
    model_id : str
        The model's id with its files' digest (:func:`clusterflow.modalities.text.model_id`): names the export.
    quantized : bool
        Use the int8 dynamic quantization of the export.
    columns : list of str
        The text columns it embeds (named in the error when the model cannot load).
    """

    def __init__(self, source: str, model_id: str, quantized: bool = False, columns: list[str] = ()):
        from transformers import AutoTokenizer

        folder = export_root() / model_id
        if not (folder / EXPORT_FILES[quantized]).exists():
            export(source, folder, quantized, list(columns))
        self.settings = json.loads((folder / SETTINGS_FILE).read_text())
        self.max_seq_length = self.settings["max_seq_length"]
        self.tokenizer = AutoTokenizer.from_pretrained(str(folder / "tokenizer"), local_files_only=True)
        self.path = folder / EXPORT_FILES[quantized]
        self.session = _session(self.path)

    def use_threads(self, threads: int) -> None:
        """Run on ``threads`` threads (a Dask worker's share of the cores), not on every core."""
        self.session = _session(self.path, threads)

    def get_embedding_dimension(self) -> int:
        return self.settings["dimension"]

    def encode(self, texts: list[str], batch_size: int = 64, **_) -> np.ndarray:
        """Embeddings of ``texts`` (rows), pooled and normalised as the model's own modules do."""
        names = self.settings["inputs"]
        order = np.argsort([len(t) for t in texts])  # similar lengths per batch: less padding
        out = np.empty((len(texts), self.get_embedding_dimension()), dtype=np.float32)
        for start in range(0, len(texts), batch_size):
            rows = order[start:start + batch_size]
            tokens = self.tokenizer([texts[i] for i in rows], padding=True, truncation=True,
                                    max_length=self.max_seq_length, return_tensors="np")
            hidden = self.session.run(None, {n: tokens[n].astype(np.int64) for n in names})[0]
            if self.settings["pooling"] == "cls":
                vectors = hidden[:, 0]
            else:
                mask = tokens["attention_mask"][..., None].astype(np.float32)
                vectors = (hidden * mask).sum(axis=1) / np.clip(mask.sum(axis=1), 1e-9, None)
            if self.settings["normalize"]:
                vectors = vectors / np.clip(np.linalg.norm(vectors, axis=1, keepdims=True), 1e-12, None)
            out[rows] = vectors
        return out


def _session(path: Path, threads: int = 0):
    """An onnxruntime CPU session; ``threads`` 0 lets onnxruntime use every core."""
    import onnxruntime

    options = onnxruntime.SessionOptions()
    options.log_severity_level = 3  # no warnings about providers on every load
    options.intra_op_num_threads = threads
    # Idle threads sleep instead of spinning: on a machine shared with Dask workers and other
    # processes, spinning took CPU from the work (33 vs 27 texts/s on two busy cores).
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    return onnxruntime.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])


def export(source: str, folder: Path, quantized: bool, columns: list[str]) -> None:
    """Export the model at ``source`` to ONNX under ``folder`` (and its int8 variant when ``quantized``)."""
    folder.mkdir(parents=True, exist_ok=True)
    if not (folder / PLAIN_EXPORT).exists():
        _export_plain(source, folder, columns)
    if not quantized and not (folder / EXPORT_FILES[False]).exists():
        _fuse(folder)
    if quantized and not (folder / EXPORT_FILES[True]).exists():
        from onnxruntime.quantization import QuantType, quantize_dynamic

        with _replaced(folder / EXPORT_FILES[True]) as partial:
            quantize_dynamic(str(folder / PLAIN_EXPORT), str(partial), weight_type=QuantType.QInt8)


def _fuse(folder: Path) -> None:
    """Write the plain export with onnxruntime's BERT fusions (attention, SkipLayerNorm, BiasGelu) applied."""
    from onnxruntime.transformers.optimizer import optimize_model

    settings = json.loads((folder / SETTINGS_FILE).read_text())
    fused = optimize_model(str(folder / PLAIN_EXPORT), model_type="bert", num_heads=settings["heads"],
                           hidden_size=settings["hidden_size"], opt_level=1)  # level 1: portable to other CPUs
    with _replaced(folder / EXPORT_FILES[False]) as partial:
        fused.save_model_to_file(str(partial))


def _export_plain(source: str, folder: Path, columns: list[str]) -> None:
    import torch
    from sentence_transformers import models

    from .text import load_sentence_model

    st = load_sentence_model(source, "cpu", columns)
    modules = list(st)
    pooling = modules[1] if len(modules) > 1 and isinstance(modules[1], models.Pooling) else None
    mode = getattr(pooling, "pooling_mode", None) if pooling is not None else None
    normalize = len(modules) == 3 and isinstance(modules[2], models.Normalize)
    if not isinstance(modules[0], models.Transformer) or mode not in POOLING_MODES or len(modules) != 2 + normalize:
        raise InputValidationError([Problem(
            rule=f"the ONNX text backend runs Transformer -> mean or CLS Pooling [-> Normalize] models; "
                 f"{source!r} is {' -> '.join(type(m).__name__ for m in modules)}",
            where="--text-backend", hint="use --text-backend torch for this model")])
    tokenizer = modules[0].tokenizer
    transformer = modules[0].auto_model
    transformer.set_attn_implementation("eager")  # the same numbers as SDPA; traced as the pattern the optimizer fuses
    names = [n for n in ("input_ids", "attention_mask", "token_type_ids") if n in tokenizer.model_input_names]
    sample = tokenizer(["an example", "another example text"], padding=True, return_tensors="pt")

    class LastHidden(torch.nn.Module):
        def __init__(self, model):
            super().__init__()
            self.model = model

        def forward(self, *inputs):
            return self.model(**dict(zip(names, inputs))).last_hidden_state

    axes = {n: {0: "batch", 1: "tokens"} for n in [*names, "last_hidden_state"]}
    staged = Path(tempfile.mkdtemp(dir=folder, prefix=".tokenizer."))
    tokenizer.save_pretrained(str(staged))
    if (folder / "tokenizer").exists():  # another process exported it first: the files are the same
        shutil.rmtree(staged)
    else:
        os.replace(staged, folder / "tokenizer")
    settings = {"inputs": names, "pooling": mode, "normalize": normalize, "max_seq_length": int(st.max_seq_length),
                "dimension": int(st.get_embedding_dimension()), "source": source,
                "heads": int(transformer.config.num_attention_heads), "hidden_size": int(transformer.config.hidden_size)}
    with _replaced(folder / SETTINGS_FILE) as partial:
        partial.write_text(json.dumps(settings, indent=2))
    with _replaced(folder / PLAIN_EXPORT) as partial, torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the exporter's notes on tracing are about its internals, not the user's data
        torch.onnx.export(LastHidden(transformer).eval(), tuple(sample[n] for n in names), str(partial),
                          input_names=names, output_names=["last_hidden_state"], dynamic_axes=axes,
                          opset_version=17, dynamo=False)  # written last: its presence means "exported"


class _replaced:
    """A temporary path beside ``target``, renamed onto it when the block succeeds."""

    def __init__(self, target: Path):
        self.target = target

    def __enter__(self) -> Path:
        handle, name = tempfile.mkstemp(dir=self.target.parent, prefix=f".{self.target.name}.")
        os.close(handle)
        self.partial = Path(name)
        return self.partial

    def __exit__(self, kind, value, traceback) -> None:
        if kind is None:
            os.chmod(self.partial, 0o644)  # mkstemp's 0600 would hide the export from other users of the cache
            os.replace(self.partial, self.target)
        else:
            self.partial.unlink(missing_ok=True)
