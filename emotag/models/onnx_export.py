"""KoBERT and e5-small models as ONNX: export (float32 + int8 dynamic quantization) and the "kobert-onnx"
backbone that serves either.

    python -m emotag.models.onnx_export models/kobert models/kobert-onnx

``export_onnx(model, folder)`` writes an emotag model folder with backbone "kobert-onnx":

* ``model.onnx``: the whole classifier (encoder + head) in float32, inputs ``input_ids``, ``attention_mask``,
  ``token_type_ids`` (int64, batch x sequence, both dynamic), output ``logits`` (batch x 4);
* ``model.int8.onnx``: the same with weights quantized to int8 (``onnxruntime.quantization.quantize_dynamic``):
  about a quarter of the size and faster on CPUs, logits within a few hundredths;
* the source model's tokenizer files (KoBERT's sentencepiece, or e5's fast tokenizer), and ``emotag_model.json`` (the source model's metadata plus ``onnx``: which file
  is served, opset, the export check).

``OnnxModel`` serves such a folder with onnxruntime alone (no torch): the int8 file by default, the float32
one with ``OnnxModel.load(folder, quantized=False)``. The export is checked: the float32 graph must give the
PyTorch logits (on a padded batch) or the export fails.
"""
from __future__ import annotations

import shutil
import tempfile
import warnings
from pathlib import Path
from typing import Sequence

import numpy as np

from ..labels import NUM_LABELS
from .base import EmotionModel, ModelLoadError, read_metadata
from .kobert_tokenizer import KoBertTokenizer, TokenizerLoadError, batches_by_length

ONNX_FILE = "model.onnx"
QUANTIZED_FILE = "model.int8.onnx"
INPUT_NAMES = ("input_ids", "attention_mask", "token_type_ids")
DEFAULT_OPSET = 17
DEFAULT_BATCH_SIZE = 32


def _softmax(logits: np.ndarray) -> np.ndarray:
    shifted = logits - logits.max(axis=1, keepdims=True)
    exp = np.exp(shifted)
    return (exp / exp.sum(axis=1, keepdims=True)).astype(np.float32)


class OnnxModel(EmotionModel):
    backbone = "kobert-onnx"

    def __init__(self, session, tokenizer: KoBertTokenizer, onnx_files: dict[str, Path], metadata: dict | None = None,
                 batch_size: int = DEFAULT_BATCH_SIZE):
        super().__init__(metadata)
        self.session, self.tokenizer, self.batch_size = session, tokenizer, batch_size
        self.onnx_files = dict(onnx_files)  # file name in the folder -> where it is now
        self._inputs = [i.name for i in session.get_inputs()]
        unknown = sorted(set(self._inputs) - set(INPUT_NAMES))
        if unknown:
            raise ModelLoadError(f"{self.served_file} takes inputs {unknown} that a KoBERT tokenizer does not give")

    @property
    def served_file(self) -> Path:
        return self.onnx_files[self.metadata["onnx"]["file"]]

    @property
    def max_len(self) -> int:
        return int(self.metadata.get("max_len") or 512)

    @classmethod
    def load(cls, folder: str | Path, quantized: bool | None = None, threads: int | None = None) -> "OnnxModel":
        """Load an exported folder; ``quantized`` picks the int8 (True) or float32 (False) graph."""
        folder = Path(folder)
        meta = read_metadata(folder)
        if meta["backbone"] != cls.backbone:
            raise ModelLoadError(f"{folder / 'emotag_model.json'} is a {meta['backbone']!r} model, "
                                 f"not {cls.backbone!r}")
        if quantized is not None:
            meta = {**meta, "onnx": {**meta.get("onnx", {}), "file": QUANTIZED_FILE if quantized else ONNX_FILE}}
        return cls._load_weights(folder, meta, threads=threads)

    @classmethod
    def _load_weights(cls, folder: Path, metadata: dict, threads: int | None = None) -> "OnnxModel":
        info = metadata.get("onnx") if isinstance(metadata.get("onnx"), dict) else {}
        name = info.get("file", QUANTIZED_FILE)
        if name not in (ONNX_FILE, QUANTIZED_FILE):
            raise ModelLoadError(f"{folder / 'emotag_model.json'} names ONNX file {name!r}, expected "
                                 f"{QUANTIZED_FILE} or {ONNX_FILE}")
        path = folder / name
        if not path.is_file():
            raise ModelLoadError(f"{path} is missing")
        tokenizer = _load_tokenizer(folder, metadata, info.get("source_backbone", "kobert"))
        files = {n: folder / n for n in (ONNX_FILE, QUANTIZED_FILE) if (folder / n).is_file()}
        return cls.from_files(files, tokenizer, {**metadata, "onnx": info}, name, threads=threads)

    @classmethod
    def from_files(cls, files: dict[str, Path], tokenizer: KoBertTokenizer, metadata: dict, name: str,
                   threads: int | None = None) -> "OnnxModel":
        """Serve ``files[name]`` (``files``: ONNX file name → path, all of which ``save`` copies)."""
        import onnxruntime as ort

        path = files[name]
        options = ort.SessionOptions()
        if threads:
            options.intra_op_num_threads = threads
        try:
            session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
        except Exception as exc:  # onnxruntime raises its own InvalidProtobuf, Fail, ... for a bad file
            raise ModelLoadError(f"{path} is corrupt or not an ONNX model ({type(exc).__name__}: {exc})") from None
        outputs = session.get_outputs()
        if len(outputs) != 1 or (isinstance(outputs[0].shape[-1], int) and outputs[0].shape[-1] != NUM_LABELS):
            raise ModelLoadError(f"{path} does not output {NUM_LABELS} logits (outputs {[o.shape for o in outputs]})")
        return cls(session, tokenizer, files, {**metadata, "onnx": {**metadata.get("onnx", {}), "file": name}})

    # -- inference ----------------------------------------------------------------------------------------------
    def logits(self, texts: Sequence[str], batch_size: int | None = None) -> np.ndarray:
        out = np.zeros((len(texts), NUM_LABELS), dtype=np.float32)
        for positions, batch in batches_by_length(self.tokenizer, list(texts), self.max_len,
                                                  batch_size or self.batch_size, return_tensors="np"):
            out[positions] = self.session.run(None, {k: batch[k] for k in self._inputs})[0]
        return out

    def predict_proba(self, texts: Sequence[str]) -> np.ndarray:
        logits = self.logits(texts)
        return logits if len(logits) == 0 else _softmax(logits)

    def _save_weights(self, folder: Path) -> None:
        for name, source in self.onnx_files.items():
            if source.resolve() != (folder / name).resolve():
                shutil.copyfile(source, folder / name)
        self.tokenizer.save_pretrained(folder)


def _load_tokenizer(folder: Path, metadata: dict, source_backbone: str):
    """The source model's tokenizer, saved beside the graph: KoBERT's sentencepiece or e5's fast tokenizer."""
    if source_backbone == "e5-small":
        from . import e5
        from .e5_classifier import E5Tokenizer

        return E5Tokenizer.from_pretrained(folder, metadata.get("prefix", e5.QUERY_PREFIX))
    try:
        return KoBertTokenizer.from_pretrained(folder)
    except TokenizerLoadError as exc:
        raise ModelLoadError(str(exc)) from None


def export_onnx(model, out: str | Path, quantize: bool = True, opset: int = DEFAULT_OPSET,
                atol: float = 1e-3) -> Path:
    """Export a ``TransformerModel`` (KoBERT or e5-small) to a "kobert-onnx" folder ``out`` (float32, plus int8 if ``quantize``).

    Written under a temporary name and renamed when complete. Raises RuntimeError if the exported graph does
    not reproduce the PyTorch logits within ``atol``.
    """
    import torch

    from ..training import save_atomically

    out = Path(out)
    tokenizer: KoBertTokenizer = model.tokenizer
    net = model.net
    was_training = net.training
    net.eval()
    # A padded sample: the traced graph must apply the attention mask (an unpadded one could let it skip).
    filler = next(i for i in range(tokenizer.vocab_size) if i not in tokenizer.special_ids)
    sample = tokenizer.pad([[tokenizer.cls_token_id, *[filler] * 6, tokenizer.sep_token_id],
                            [tokenizer.cls_token_id, filler, tokenizer.sep_token_id]])
    sample = {k: v.to(model.device) for k, v in sample.items()}
    work = Path(tempfile.mkdtemp(prefix="emotag-onnx-"))
    try:
        fp32 = work / ONNX_FILE
        axes = {name: {0: "batch", 1: "sequence"} for name in INPUT_NAMES}
        with warnings.catch_warnings(), torch.no_grad():
            warnings.simplefilter("ignore")  # tracer and deprecation chatter
            torch.onnx.export(net, tuple(sample[k] for k in INPUT_NAMES), str(fp32), input_names=list(INPUT_NAMES),
                              output_names=["logits"], dynamic_axes={**axes, "logits": {0: "batch"}},
                              opset_version=opset, do_constant_folding=True, dynamo=False)
            expected = net(**sample).float().cpu().numpy()
        net.train(was_training)
        files = {ONNX_FILE: fp32}
        if quantize:
            files[QUANTIZED_FILE] = _quantize(fp32, work / QUANTIZED_FILE)
        meta = {k: v for k, v in model.metadata.items() if k not in ("backbone", "onnx")}
        meta["onnx"] = {"file": QUANTIZED_FILE if quantize else ONNX_FILE, "opset": opset, "quantized": quantize,
                        "source_backbone": model.backbone}
        meta["max_len"] = model.max_len
        exported = OnnxModel.from_files(files, tokenizer, meta, ONNX_FILE)
        got = exported.session.run(None, {k: v.cpu().numpy() for k, v in sample.items()})[0]
        error = float(np.abs(got - expected).max())
        if error > atol:
            raise RuntimeError(f"the exported graph's logits differ from PyTorch's by {error:.2e} (> {atol})")
        meta["onnx"]["export_max_abs_error"] = error
        served = OnnxModel.from_files(files, tokenizer, meta, meta["onnx"]["file"])
        return save_atomically(served, out)
    finally:
        net.train(was_training)
        shutil.rmtree(work, ignore_errors=True)


# The export's version, part of the serving cache key (``emotag.models.serving``): bump it when an export
# changes, so cached exports are made again. 2: int8 weights with reduce_range (see ``_quantize``).
EXPORT_VERSION = 2


def _quantize(fp32: Path, int8: Path) -> Path:
    from onnxruntime.quantization import QuantType, quantize_dynamic
    from onnxruntime.quantization.shape_inference import quant_pre_process

    prepared = fp32.with_name("model.prepared.onnx")
    try:  # shape inference and graph clean-up, as onnxruntime recommends before quantizing
        quant_pre_process(str(fp32), str(prepared), skip_symbolic_shape=True)
    except Exception:  # the plain graph quantizes too
        prepared = fp32
    # per-channel scales: per-tensor int8 cost a fine-tuned e5-small 0.07 story macro-F1, per-channel 0.01.
    # reduce_range (7-bit weights): without it, onnxruntime's u8s8 kernels on x86 CPUs without VNNI (AVX2
    # only) saturate and a small BERT's logits moved by up to 0.5 (tests/test_onnx.py::test_int8_parity).
    quantize_dynamic(str(prepared), str(int8), weight_type=QuantType.QInt8, per_channel=True, reduce_range=True)
    return int8


def main(argv: list[str] | None = None) -> int:
    import argparse

    from . import load_model

    ap = argparse.ArgumentParser(description="Export an emotag kobert or e5-small model folder to ONNX (+ int8).")
    ap.add_argument("model", help="emotag model folder with backbone 'kobert' or 'e5-small'")
    ap.add_argument("out", help="folder to write (backbone 'kobert-onnx')")
    ap.add_argument("--no-quantize", action="store_true", help="float32 only")
    ap.add_argument("--opset", type=int, default=DEFAULT_OPSET)
    args = ap.parse_args(argv)
    model = load_model(args.model)
    if model.backbone not in ("kobert", "e5-small"):
        ap.error(f"{args.model} is a {model.backbone!r} model; only 'kobert' and 'e5-small' models export to ONNX")
    out = export_onnx(model, args.out, quantize=not args.no_quantize, opset=args.opset)
    print(f"wrote {out} ({', '.join(sorted(p.name for p in out.glob('*.onnx')))})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
