import numpy as np
import pytest

from emotag.metrics import bootstrap_interval, evaluate


def test_evaluate_gives_macro_f1_and_the_confusion_matrix():
    m = evaluate([0, 1, 2, 3, 0], [0, 1, 2, 0, 0])
    assert m["n"] == 5 and m["accuracy"] == 0.8 and m["per_class_f1"]["angry"] == 0
    assert m["confusion"][3] == [1, 0, 0, 0]


def test_bootstrap_interval_holds_the_figure_and_narrows_with_more_sentences():
    rng = np.random.default_rng(0)
    def draw(n):
        gold = rng.integers(0, 4, n)
        predicted = np.where(rng.random(n) < 0.7, gold, rng.integers(0, 4, n))
        return gold, predicted
    small, large = draw(100), draw(3000)
    lo_s, hi_s = bootstrap_interval(*small)
    lo_l, hi_l = bootstrap_interval(*large)
    assert lo_s <= evaluate(*small)["macro_f1"] <= hi_s and lo_l <= evaluate(*large)["macro_f1"] <= hi_l
    assert hi_l - lo_l < (hi_s - lo_s) / 3
    assert bootstrap_interval(*small) == (lo_s, hi_s)  # seeded: the same interval every run


def test_paired_interval_of_a_difference():
    gold = np.array([0, 1, 2, 3] * 50)
    perfect, wrong = gold.copy(), (gold + 1) % 4
    lo, hi = bootstrap_interval(gold, perfect, baseline=wrong)
    assert lo > 0.9 and hi <= 1.0  # clearly better: the interval is far from 0
    lo, hi = bootstrap_interval(gold, perfect, baseline=perfect)
    assert lo == hi == 0.0
    with pytest.raises(ValueError):
        bootstrap_interval(gold, perfect[:3])
