"""End-to-end tagging speed of the default model: split + predict on the Snow Queen (~880 sentences).

    .venv/bin/python bench/bench_tag.py [--model FOLDER] [--stories ../shared/data/stories] [--threads 2]

The model is loaded as the app serves it (``emotag.models.serving.load_for_serving``: KoBERT / e5-small
through the cached int8 ONNX export; EMOTAG_ONNX=0 for PyTorch). The load time includes a first export when
the cache has none.
"""
from __future__ import annotations

import argparse
import resource
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from emotag.models.serving import load_for_serving  # noqa: E402
from emotag.predictor import Predictor, default_model_path  # noqa: E402
from emotag.splitter import split_sentences  # noqa: E402


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", default=None)
    ap.add_argument("--stories", default=str(Path(__file__).resolve().parents[2] / "shared" / "data" / "stories"))
    ap.add_argument("--threads", type=int, default=2, help="torch threads (onnxruntime uses the cores)")
    args = ap.parse_args()
    import torch

    torch.set_num_threads(args.threads)
    path = Path(args.stories) / "nunui_yeowang__snow_queen.txt"
    if not path.is_file():
        print(f"skipped: {path} not found")
        return 0
    text = path.read_text(encoding="utf-8").split("\n", 1)[1]
    t0 = time.perf_counter()
    model = load_for_serving(args.model or default_model_path())
    load_s = time.perf_counter() - t0
    predictor = Predictor(model)
    split_sentences("준비. 운동.")  # warm-up
    runs, split_runs = [], []
    Predictor(model).predict([s.text for s in split_sentences(text[:3000])])  # warm-up (first-batch allocations)
    for _ in range(3):
        t0 = time.perf_counter()
        spans = split_sentences(text)
        t1 = time.perf_counter()
        predictor.predict([s.text for s in spans])
        t2 = time.perf_counter()
        split_runs.append(t1 - t0)
        runs.append(t2 - t0)
    total, split = statistics.median(runs), statistics.median(split_runs)
    n = len(spans)
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"model {model.name} ({model.backbone}): loaded in {load_s:.2f} s")
    print(f"snow queen: {n} sentences tagged in {total:.3f} s (split {split:.3f} s + predict {total - split:.3f} s) "
          f"= {n / total:,.0f} sentences/s; predict alone {n / max(total - split, 1e-9):,.0f} sentences/s")
    print(f"peak RSS {rss:,.0f} MiB")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
