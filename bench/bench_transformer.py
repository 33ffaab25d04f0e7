"""Inference speed of a KoBERT-shaped model (12 layers, hidden 768, vocab 8,002; random weights): PyTorch fp32
at batch 1 and batch 32 (length-bucketed) against ONNX Runtime int8 (dynamic quantization).

    .venv/bin/python bench/bench_transformer.py [--threads 2] [--sentences 900]

Sentences come from the Snow Queen in ../shared/data/stories when present (else generated Korean text).
"""
from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import torch  # noqa: E402
from transformers import BertConfig, BertModel  # noqa: E402

from emotag.models.onnx_export import OnnxModel, export_onnx  # noqa: E402
from emotag.models.transformer import TransformerModel  # noqa: E402
from emotag.splitter import split_sentences  # noqa: E402
from tests.tiny_bert import make_tiny_kobert  # noqa: E402

KOBERT = dict(vocab_size=8002, hidden_size=768, num_hidden_layers=12, num_attention_heads=12, intermediate_size=3072,
              max_position_embeddings=512, type_vocab_size=1, pad_token_id=1)


def sentences(n: int) -> list[str]:
    path = ROOT.parent / "shared" / "data" / "stories" / "nunui_yeowang__snow_queen.txt"
    if path.is_file():
        found = [s.text for s in split_sentences(path.read_text(encoding="utf-8").split("\n", 1)[1])]
    else:
        found = [f"옛날 옛적에 {i}번째 토끼가 숲속 작은 집에서 행복하게 살았어요." for i in range(n)]
    return (found * (n // len(found) + 1))[:n]


def rate(fn, texts: list[str]) -> float:
    t0 = time.perf_counter()
    fn(texts)
    return len(texts) / (time.perf_counter() - t0)


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--sentences", type=int, default=900)
    ap.add_argument("--batch1-sentences", type=int, default=100)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    work = Path(tempfile.mkdtemp(prefix="emotag-bench-"))
    base = make_tiny_kobert(work / "base")  # tokenizer files + layout; the encoder is replaced below
    torch.manual_seed(0)
    BertModel(BertConfig(**KOBERT)).save_pretrained(base)
    model = TransformerModel.from_pretrained(base, max_len=64)
    model.net.eval()
    texts = sentences(args.sentences)
    lengths = model.tokenizer.token_lengths(texts)
    print(f"KoBERT-shaped model, {sum(p.numel() for p in model.net.parameters()) / 1e6:.0f} M parameters; "
          f"{len(texts)} sentences, mean {sum(lengths) / len(lengths):.1f} tokens; {args.threads} threads")

    with torch.inference_mode():
        model.logits(texts[:8], batch_size=8)  # warm-up
        b1 = rate(lambda t: model.logits(t, batch_size=1), texts[: args.batch1_sentences])
        b32 = rate(lambda t: model.logits(t, batch_size=32), texts)
    t0 = time.perf_counter()
    export_onnx(model, work / "onnx", quantize=True)
    export_s = time.perf_counter() - t0
    onnx = OnnxModel.load(work / "onnx", quantized=True, threads=args.threads)
    onnx.logits(texts[:8], batch_size=8)
    o32 = rate(lambda t: onnx.logits(t, batch_size=32), texts)
    o1 = rate(lambda t: onnx.logits(t, batch_size=1), texts[: args.batch1_sentences])
    size = {p.name: p.stat().st_size / 2**20 for p in (work / "onnx").glob("*.onnx")}

    print(f"\n{'engine':<28} {'sentences/s':>12} {'x fp32 batch 1':>15}")
    for name, value in (("PyTorch fp32, batch 1", b1), ("PyTorch fp32, batch 32", b32),
                        ("ONNX Runtime int8, batch 1", o1), ("ONNX Runtime int8, batch 32", o32)):
        print(f"{name:<28} {value:>12.1f} {value / b1:>14.1f}x")
    print(f"\n{len(texts)} sentences with ONNX int8 batch 32: {len(texts) / o32:.2f} s "
          f"(export + quantize {export_s:.0f} s; files {', '.join(f'{k} {v:.0f} MiB' for k, v in size.items())})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
