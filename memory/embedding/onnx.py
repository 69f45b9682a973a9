"""A faster embedding backend: the model exported offline to ONNX, int8 dynamically quantized, run by onnxruntime.

The export happens once per model and machine, offline, from the weights on
disk: the sentence-transformers Transformer module goes through
``torch.onnx.export`` (the TorchScript exporter; no extra package), then
``onnxruntime.quantization.quantize_dynamic`` turns its MatMul weights into
per-channel int8 (activations are quantized on the fly). The file lands in a cache directory
(``$HASHMEM_CACHE`` or the user cache dir, ``onnx/<digest>/model-qint8.onnx``,
the digest covering the model's files), written to a temporary name and renamed,
so concurrent processes never see half a file.

Encoding: texts are tokenized once, sorted by token count (so each batch pads to
a near-equal length), run in batches, mean-pooled over the attention mask and
unit-normalized, then put back in input order. This reproduces
sentence-transformers' ``Transformer → Pooling(mean) → Normalize`` pipeline; a
model with another pooling is not supported here (``supports`` says so) and
stays on torch.

What it does not do: choose the backend (``embed``), or support GPUs.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import tempfile
import warnings
from collections.abc import Sequence
from contextlib import contextmanager
from pathlib import Path

import numpy as np

from ..errors import ModelLoadError
from ..progress import progress_bar

CACHE_ENV = "HASHMEM_CACHE"
ONNX_FILE = "model-qint8.onnx"
EXPORT_VERSION = "2"  # bump when the export recipe changes


def cache_dir() -> Path:
    """``$HASHMEM_CACHE`` or the user cache directory of hashmem."""
    env = os.environ.get(CACHE_ENV)
    if env:
        return Path(env)
    from platformdirs import user_cache_dir

    return Path(user_cache_dir("hashmem", appauthor=False))


def available() -> bool:
    """Whether onnxruntime (to run) and onnx (to quantize) are importable."""
    try:
        import onnx  # noqa: F401
        import onnxruntime  # noqa: F401
    except ImportError:
        return False
    return True


def supports(model_dir: Path) -> bool:
    """Whether a local sentence-transformers directory is Transformer → mean Pooling (→ Normalize)."""
    try:
        modules = json.loads((model_dir / "modules.json").read_text())
        types = [m["type"].rsplit(".", 1)[-1] for m in modules]
        if types[:2] != ["Transformer", "Pooling"] or any(t != "Normalize" for t in types[2:]):
            return False
        pooling = json.loads((model_dir / modules[1]["path"] / "config.json").read_text())
        return bool(pooling.get("pooling_mode_mean_tokens")) and not any(
            v for k, v in pooling.items() if k.startswith("pooling_mode_") and k != "pooling_mode_mean_tokens"
        ) and (model_dir / "tokenizer.json").exists()
    except (OSError, ValueError, KeyError, IndexError):
        return False


def _digest(model_dir: Path) -> str:
    h = hashlib.sha256(EXPORT_VERSION.encode())
    for p in sorted(model_dir.rglob("*")):
        if p.is_file():
            st = p.stat()
            h.update(f"{p.relative_to(model_dir)}:{st.st_size}:{int(st.st_mtime)}".encode())
    return h.hexdigest()[:16]


def onnx_path(model_dir: Path) -> Path:
    """Where the quantized export of this model directory lives (it may not exist yet)."""
    return cache_dir() / "onnx" / _digest(model_dir) / ONNX_FILE


class _DropPreprocessingAdvice(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        return "pre-processing before quantization" not in record.getMessage()


@contextmanager
def _without_preprocessing_advice():
    """Silence onnxruntime's "Please consider to run pre-processing before quantization" (root logger).

    Its pre-processing (shape inference and graph optimization, ``quant_pre_process``)
    is meant for static quantization; for dynamic int8 MatMul weights it changes nothing
    we measure, and a user's first run should not print third-party advice.
    """
    f = _DropPreprocessingAdvice()
    root = logging.getLogger()
    root.addFilter(f)
    handlers = list(root.handlers)
    for h in handlers:
        h.addFilter(f)
    try:
        yield
    finally:
        root.removeFilter(f)
        for h in handlers:
            h.removeFilter(f)


def export(model_dir: Path, target: Path) -> Path:
    """Export and quantize the model at ``model_dir`` to ``target`` (offline; needs torch and onnx)."""
    import torch
    from onnxruntime.quantization import QuantType, quantize_dynamic

    from .models import load_model

    st = load_model(str(model_dir))
    transformer = st[0].auto_model.eval()
    tok = st.tokenizer(["hashmem export", "a second, longer sentence for the export"], padding=True,
                       return_tensors="pt")
    names = [n for n in ("input_ids", "attention_mask", "token_type_ids") if n in tok]

    class _Hidden(torch.nn.Module):
        def __init__(self, m):
            super().__init__()
            self.m = m

        def forward(self, *args):
            return self.m(**dict(zip(names, args, strict=True))).last_hidden_state

    target.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=target.parent) as tmp:
        fp32 = Path(tmp) / "model.onnx"
        axes = {n: {0: "batch", 1: "tokens"} for n in [*names, "last_hidden_state"]}
        q = Path(tmp) / ONNX_FILE
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # the tracer's notes on Python booleans in the mask
                torch.onnx.export(_Hidden(transformer), tuple(tok[n] for n in names), str(fp32),
                                  input_names=names, output_names=["last_hidden_state"], dynamic_axes=axes,
                                  opset_version=17, dynamo=False)
                # per-channel int8 weights of the MatMuls only: mean cosine to fp32 0.994 on SciFact
                # (per-tensor, the default, gives 0.935)
                with _without_preprocessing_advice():
                    quantize_dynamic(str(fp32), str(q), weight_type=QuantType.QInt8, per_channel=True,
                                     op_types_to_quantize=["MatMul"])
        except Exception as e:  # noqa: BLE001 - exporter errors come in many types
            raise ModelLoadError(f"cannot export {model_dir} to ONNX ({str(e).splitlines()[0][:200]}); "
                                 "use the torch backend (backend='torch')") from e
        os.replace(q, target)
    return target


class OnnxEncoder:
    """Embeds with the int8 ONNX export of a local sentence-transformers model directory.

    Args:
        model_dir: the model directory (``supports(model_dir)`` must hold).
        batch_size: texts per forward pass.
        threads: onnxruntime intra-op threads (default: all cores).
        onnx_file: another ONNX file of the same model to run (benchmarks compare an fp32 export).
    """

    def __init__(self, model_dir: Path, *, batch_size: int = 32, threads: int | None = None,
                 onnx_file: Path | None = None) -> None:
        import onnxruntime as ort
        from tokenizers import Tokenizer

        self.model_dir = Path(model_dir)
        path = onnx_path(self.model_dir) if onnx_file is None else Path(onnx_file)
        if not path.exists():
            export(self.model_dir, path)
        self.path = path
        opts = ort.SessionOptions()
        opts.intra_op_num_threads = threads or os.cpu_count() or 1
        opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        # no busy-waiting between ops: on a machine shared with other work, spinning threads steal
        # the cores the next op needs (measured: 53 vs 41 passages/s on 2 busy cores)
        opts.add_session_config_entry("session.intra_op.allow_spinning", "0")
        self.session = ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])
        self.input_names = [i.name for i in self.session.get_inputs()]
        cfg_path = self.model_dir / "sentence_bert_config.json"
        cfg = json.loads(cfg_path.read_text()) if cfg_path.exists() else {}
        self.max_length = int(cfg.get("max_seq_length", 256))
        self.tokenizer = Tokenizer.from_file(str(self.model_dir / "tokenizer.json"))
        self.tokenizer.no_padding()
        self.tokenizer.enable_truncation(self.max_length)
        hidden = json.loads((self.model_dir / "config.json").read_text()).get("hidden_size")
        self.dim = int(hidden) if hidden else int(self.encode(["dimension probe"]).shape[1])
        self.batch_size = batch_size

    def vocab(self) -> list[str]:
        return list(self.tokenizer.get_vocab())

    def encode(self, texts: Sequence[str], *, progress: bool = False) -> np.ndarray:
        """Unit-normalized float32 [len(texts), dim], in input order."""
        encs = self.tokenizer.encode_batch(list(texts))
        lengths = np.array([len(e.ids) for e in encs])
        order = np.argsort(-lengths, kind="stable")  # longest first: the slowest batch shows up early
        out = np.empty((len(texts), getattr(self, "dim", 0) or 1), dtype=np.float32)
        bar = progress_bar(len(texts), bool(progress), desc="embedding")
        for s in range(0, len(texts), self.batch_size):
            idx = order[s : s + self.batch_size]
            width = int(lengths[idx].max())
            ids = np.zeros((len(idx), width), dtype=np.int64)
            mask = np.zeros((len(idx), width), dtype=np.int64)
            types = np.zeros((len(idx), width), dtype=np.int64)
            for r, j in enumerate(idx):
                e = encs[j]
                n = len(e.ids)
                ids[r, :n] = e.ids
                mask[r, :n] = 1
                types[r, :n] = e.type_ids
            feeds = {"input_ids": ids, "attention_mask": mask, "token_type_ids": types}
            hidden = self.session.run(None, {k: feeds[k] for k in self.input_names})[0]  # [b, tokens, dim]
            m = mask[:, :, None].astype(np.float32)
            pooled = (hidden * m).sum(axis=1) / np.maximum(m.sum(axis=1), 1e-9)  # [b, dim]
            if out.shape[1] != pooled.shape[1]:
                out = np.empty((len(texts), pooled.shape[1]), dtype=np.float32)
            out[idx] = pooled / np.maximum(np.linalg.norm(pooled, axis=1, keepdims=True), 1e-12)
            if bar is not None:
                bar.update(len(idx))
        if bar is not None:
            bar.close()
        return out
