"""Sentence-splitting speed: the Snow Queen target (< 2 s) and how time grows with text length.

    .venv/bin/python bench/bench_split.py [--stories ../shared/data/stories]
"""
from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from emotag.splitter import split_sentences  # noqa: E402


def timed(text: str, repeat: int = 3) -> tuple[float, int]:
    times, n = [], 0
    for _ in range(repeat):
        t0 = time.perf_counter()
        n = len(split_sentences(text))
        times.append(time.perf_counter() - t0)
    return statistics.median(times), n


def story_text(path: Path) -> str:
    return path.read_text(encoding="utf-8").split("\n", 1)[1]  # drop the source/licence line


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--stories", default=str(Path(__file__).resolve().parents[2] / "shared" / "data" / "stories"))
    args = ap.parse_args()
    folder = Path(args.stories)
    if not folder.is_dir():
        print(f"skipped: {folder} not found")
        return 0
    t0 = time.perf_counter()
    split_sentences("준비. 운동.")
    print(f"warm-up (kss + mecab load): {time.perf_counter() - t0:.2f} s")

    snow = story_text(folder / "nunui_yeowang__snow_queen.txt")
    seconds, n = timed(snow)
    print(f"snow queen: {len(snow):,} chars -> {n} sentences in {seconds:.3f} s "
          f"({n / seconds:,.0f} sentences/s; target < 2 s: {'OK' if seconds < 2 else 'MISSED'})")

    # Linearity: prefixes of all stories joined (different text each time, so no cache helps).
    corpus = "\n".join(story_text(p) for p in sorted(folder.glob("*.txt")))
    print(f"\n{'chars':>9} {'sentences':>9} {'seconds':>8} {'us/char':>8} {'ratio to smallest':>18}")
    base = None
    for fraction in (0.125, 0.25, 0.5, 1.0):
        part = corpus[: int(len(corpus) * fraction)]
        seconds, n = timed(part, repeat=1)
        per_char = seconds / len(part) * 1e6
        base = base or per_char
        print(f"{len(part):>9,} {n:>9,} {seconds:>8.3f} {per_char:>8.2f} {per_char / base:>17.2f}x")
    print("\n(time per character staying flat as the text grows 8x = linear)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
