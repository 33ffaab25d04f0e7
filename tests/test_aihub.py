import pandas as pd
import pytest

from emotag.aihub import majority_vote, read_aihub, read_aihub_csv
from emotag.dataset import split_by_text
from emotag.textio import InputError

HEADER = "wav_id,발화문,상황,1번 감정,1번 감정세기,2번 감정,2번 감정세기,3번 감정,3번 감정세기,4번 감정,4번 감정세기,5번 감정,5번 감정세기,나이,성별\n"


def write_cp949(path, rows):
    path.write_bytes((HEADER + "".join(rows)).encode("cp949"))
    return path


def test_majority_vote_rules():
    assert majority_vote(["Sadness", "sadness", "Sadness", "Angry", "Neutral"]) == ("sad", 3)
    assert majority_vote(["happiness"] * 5) == ("happy", 5)
    assert majority_vote(["Angry", "Angry", "Neutral", "Neutral", "Sadness"]) == (None, 0)  # no majority
    assert majority_vote(["Fear", "Fear", "Fear", "Neutral", "Angry"]) == (None, 0)  # other emotion
    assert majority_vote(["", "", "", "", ""]) == (None, 0)


def test_reader_on_a_small_cp949_file(tmp_path):
    path = write_cp949(tmp_path / "a.csv", [
        "w1,\"어, 청소 니가 대신 해 줘!\",anger,Angry,1,Angry,1,Neutral,0,angry,0,Angry,1,27,male\n",
        "w2,그럼 방세는 어떡해.,anger,Sadness,1,Sadness,1,Sadness,1,Sadness,1,Sadness,1,27,male\n",
        "w3,무서워.,fear,Fear,1,Fear,1,Fear,1,Fear,1,Neutral,1,27,male\n",
        "w4,글쎄.,x,Neutral,1,Angry,1,Sadness,1,Fear,1,Neutral,1,27,male\n",
    ])
    df = read_aihub_csv(path)
    assert df["text"].tolist() == ["어, 청소 니가 대신 해 줘!", "그럼 방세는 어떡해."]
    assert df["label"].tolist() == ["angry", "sad"]
    assert df["label_id"].tolist() == [3, 2]
    assert df["votes"].tolist() == [4, 5]


def test_reader_rejects_wrong_files_clearly(tmp_path):
    (tmp_path / "utf8.csv").write_text(HEADER + "w,가나다 라마바 사아자 차카타 파하 가나다 라마바,x,화남,1,,,,,,,,,1,m\n" * 3, encoding="utf-8")
    with pytest.raises(InputError, match="cp949"):
        read_aihub_csv(tmp_path / "utf8.csv")
    (tmp_path / "cols.csv").write_bytes("a,b\n1,2\n".encode("cp949"))
    with pytest.raises(InputError, match="1번 감정"):
        read_aihub_csv(tmp_path / "cols.csv")
    with pytest.raises(InputError, match="no AI Hub"):
        read_aihub(tmp_path / "nothing-here")


def test_the_published_files(aihub_dir):
    df = read_aihub(aihub_dir)
    assert len(df) > 20_000
    assert set(df["label"]) == {"neutral", "happy", "sad", "angry"}
    assert df["votes"].min() >= 3
    # the same sentence repeats across speakers: the split must keep every copy on one side
    assert df["text"].duplicated().any()
    train, valid = split_by_text(df, 0.1)
    assert not set(train["text"]) & set(valid["text"])
    assert 0.07 < len(valid) / len(df) < 0.13


def test_split_by_text_is_stable_under_reordering():
    df = pd.DataFrame({"text": [f"문장 {i}" for i in range(500)] * 2, "label": ["sad"] * 1000})
    _, v1 = split_by_text(df, 0.2, seed=1)
    _, v2 = split_by_text(df.sample(frac=1, random_state=3), 0.2, seed=1)
    assert set(v1["text"]) == set(v2["text"])
    assert all(v1["text"].value_counts() == 2)
