"""Agreement measures against examples computed by hand (the working is in the comments)."""
from __future__ import annotations

import pytest

from emotag.store import Store
from emotag.store.agreement import agreement_report, category_table, cohen_kappa, fleiss_kappa, krippendorff_alpha
from tests.pg import db_url  # noqa: F401

N, H, S, A = "neutral", "happy", "sad", "angry"


def test_cohen_kappa_by_hand():
    a = [N, N, N, N, H, H, S, S, A, A]
    b = [N, N, N, H, H, H, S, A, A, A]
    # Agreements: items 1-3 (N), 5-6 (H), 7 (S), 9-10 (A) = 8 of 10, so p_o = 0.8.
    # Marginals  a: N 4, H 2, S 2, A 2     b: N 3, H 3, S 1, A 3
    # p_e = (4*3 + 2*3 + 2*1 + 2*3) / 10^2 = 26/100 = 0.26
    # kappa = (0.8 - 0.26) / (1 - 0.26) = 0.54 / 0.74 = 27/37 = 0.729729...
    assert cohen_kappa(a, b) == pytest.approx(27 / 37)
    assert cohen_kappa(a, a) == pytest.approx(1.0)
    # Both always "neutral": p_o = p_e = 1, kappa = 0/0: undefined
    assert cohen_kappa([N, N], [N, N]) is None
    assert cohen_kappa([], []) is None
    with pytest.raises(ValueError):
        cohen_kappa([N], [N, H])


def test_fleiss_kappa_by_hand():
    rows = [[N, N, N], [H, H, S], [S, S, S], [A, H, N]]
    assert category_table(rows).tolist() == [[3, 0, 0, 0], [0, 2, 1, 0], [0, 0, 3, 0], [1, 1, 0, 1]]
    # n = 3 raters.  P_i = (sum_j n_ij^2 - n) / (n (n - 1)) = (sum_j n_ij^2 - 3) / 6
    #   item 1: (9 - 3)/6 = 1     item 2: (4 + 1 - 3)/6 = 1/3     item 3: 1     item 4: (1 + 1 + 1 - 3)/6 = 0
    #   P_bar = (1 + 1/3 + 1 + 0) / 4 = 7/12
    # p_j over 12 labels: N 4/12, H 3/12, S 4/12, A 1/12;  P_e = (16 + 9 + 16 + 1) / 144 = 42/144 = 7/24
    # kappa = (7/12 - 7/24) / (1 - 7/24) = (7/24) / (17/24) = 7/17 = 0.411764...
    assert fleiss_kappa(rows) == pytest.approx(7 / 17)
    assert fleiss_kappa([[N, N], [H, H]]) == pytest.approx(1.0)
    assert fleiss_kappa([[N, N], [N, N]]) is None  # P_e = 1: undefined
    assert fleiss_kappa([]) is None
    with pytest.raises(ValueError):
        fleiss_kappa([[N, N], [N]])


# Three annotators, five sentences, some unlabelled (example used below for alpha and the report):
#   item 1: a N, b N, c N
#   item 2: a H, b H, c S
#   item 3: a S, b S
#   item 4:      b A, c H
#   item 5: a N               (one label: not pairable, ignored by alpha)
RATINGS = {1: {"a": N, "b": N, "c": N}, 2: {"a": H, "b": H, "c": S}, 3: {"a": S, "b": S}, 4: {"b": A, "c": H},
           5: {"a": N}}


def test_krippendorff_alpha_by_hand():
    # Coincidences o_ck: each ordered pair of values within an item counts 1/(m_u - 1).
    #   item 1 (m=3): 6 ordered N-N pairs * 1/2      -> o_NN = 3
    #   item 2 (m=3): H-H x2, H-S x2, S-H x2, * 1/2  -> o_HH = 1, o_HS = 1, o_SH = 1
    #   item 3 (m=2): S-S x2 * 1                     -> o_SS = 2
    #   item 4 (m=2): A-H, H-A * 1                   -> o_AH = 1, o_HA = 1
    # Marginals n_c: N 3, H 1+1+1 = 3, S 1+2 = 3, A 1;  n = 10 pairable values
    # D_o = (o_HS + o_SH + o_AH + o_HA) / n = 4/10 = 0.4
    # D_e = (n^2 - sum n_c^2) / (n (n - 1)) = (100 - (9 + 9 + 9 + 1)) / 90 = 72/90 = 0.8
    # alpha = 1 - D_o / D_e = 1 - 0.4/0.8 = 0.5
    assert krippendorff_alpha(RATINGS) == pytest.approx(0.5)
    assert krippendorff_alpha({1: {"a": N, "b": N}, 2: {"a": N, "b": N}}) is None  # one value only: undefined
    assert krippendorff_alpha({1: {"a": N}}) is None


def test_report_by_hand():
    report = agreement_report(RATINGS)
    assert report.annotators == ["a", "b", "c"]
    assert (report.items, report.pairable, report.disagreements) == (5, 4, 2)
    pairs = {(p.a, p.b): p for p in report.pairs}
    # a-b on items 1-3: (N,N) (H,H) (S,S): p_o = 1; marginals equal, p_e = 3 * (1/3)^2 = 1/3; kappa = 1
    assert (pairs["a", "b"].items, pairs["a", "b"].observed) == (3, 1.0)
    assert pairs["a", "b"].kappa == pytest.approx(1.0)
    # a-c on items 1-2: (N,N) (H,S): p_o = 1/2; a: N1 H1, c: N1 S1, p_e = (1*1)/4 = 1/4
    #   kappa = (1/2 - 1/4) / (3/4) = 1/3
    assert pairs["a", "c"].items == 2 and pairs["a", "c"].kappa == pytest.approx(1 / 3)
    # b-c on items 1, 2, 4: (N,N) (H,S) (A,H): p_o = 1/3; b: N1 H1 A1, c: N1 S1 H1, p_e = (1 + 1)/9 = 2/9
    #   kappa = (1/3 - 2/9) / (7/9) = 1/7
    assert pairs["b", "c"].items == 3 and pairs["b", "c"].kappa == pytest.approx(1 / 7)
    # Fleiss on the items all three labelled (1, 2): P_1 = 1, P_2 = 1/3, P_bar = 2/3;
    #   p_j over 6 labels: N 3/6, H 2/6, S 1/6; P_e = (9 + 4 + 1)/36 = 7/18
    #   kappa = (2/3 - 7/18) / (11/18) = (5/18) / (11/18) = 5/11
    assert report.fleiss_items == 2 and report.fleiss_kappa == pytest.approx(5 / 11)
    assert report.krippendorff_alpha == pytest.approx(0.5)
    assert report.to_dict()["pairs"][0] == {"a": "a", "b": "b", "items": 3, "observed": 1.0, "kappa": 1.0}
    empty = agreement_report({})
    assert (empty.annotators, empty.pairs, empty.fleiss_kappa, empty.krippendorff_alpha) == ([], [], None, None)


def test_store_agreement_per_story_and_overall(db_url):  # noqa: F811
    with Store(db_url) as store:
        one = store.add_story("one", sentences=[f"첫째 이야기 {i}." for i in range(5)])
        two = store.add_story("two", sentences=["둘째 이야기.", "또 다른 문장."])
        s1 = [x.id for x in store.sentences(one.id)]
        for item, labels in RATINGS.items():
            for who, label in labels.items():
                store.annotate(s1[item - 1], who, label)
        store.annotate(s1[3], "c", "angry")  # changed mind ...
        store.undo(s1[3], "c")  # ... and took it back: the current label is happy again
        s2 = [x.id for x in store.sentences(two.id)]
        store.annotate(s2[0], "a", N)
        store.annotate(s2[0], "b", H)
        report = store.agreement(one.id)
        assert report.krippendorff_alpha == pytest.approx(0.5)
        assert report.fleiss_kappa == pytest.approx(5 / 11)
        assert {(p.a, p.b): round(p.kappa, 6) for p in report.pairs} == {
            ("a", "b"): 1.0, ("a", "c"): round(1 / 3, 6), ("b", "c"): round(1 / 7, 6)}
        by_story = store.agreement_by_story()
        assert by_story[one.id] == report
        assert (by_story[two.id].annotators, by_story[two.id].disagreements) == (["a", "b"], 1)
        overall = store.agreement()
        assert (overall.items, overall.pairable, overall.disagreements) == (6, 5, 3)
        # hand check of the a-b pair overall: items (N,N) (H,H) (S,S) and (N,H) from story two
        #   p_o = 3/4; a: N2 H1 S1, b: N1 H2 S1; p_e = (2*1 + 1*2 + 1*1)/16 = 5/16
        #   kappa = (3/4 - 5/16) / (11/16) = 7/11
        ab = next(p for p in overall.pairs if (p.a, p.b) == ("a", "b"))
        assert ab.items == 4 and ab.kappa == pytest.approx(7 / 11)
