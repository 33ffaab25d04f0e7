import csv
import io
import json
import subprocess
import sys

import pytest

from emotag.cli import main

from .helpers import tiny_classical

ROOT = __import__("pathlib").Path(__file__).resolve().parent.parent
STORY = "토끼는 숲속 작은 집에 살았어요. \"와, 정말 신난다!\"\n친구가 떠나서 너무 슬퍼요. 왜 내 당근을 먹었어!\n"


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory):
    folder = tmp_path_factory.mktemp("model")
    tiny_classical(folder)
    return str(folder)


def run(capsys, *argv):
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_tag_jsonl(tmp_path, capsys, model_dir):
    path = tmp_path / "story.txt"
    path.write_text(STORY, encoding="utf-8")
    code, out, err = run(capsys, "tag", str(path), "--format", "jsonl", "--model", model_dir)
    assert code == 0
    rows = [json.loads(line) for line in out.splitlines()]
    assert [r["label"] for r in rows] == ["neutral", "happy", "sad", "angry"]
    for r in rows:
        assert set(r) >= {"text", "start", "end", "label", "confidence", "scores"}
        assert STORY[r["start"]:r["end"]] == r["text"]


def test_tag_csv_text_and_tts(tmp_path, capsys, model_dir):
    path = tmp_path / "story.txt"
    path.write_bytes(STORY.encode("cp949"))  # a cp949 file reads the same
    _, out, _ = run(capsys, "tag", str(path), "--format", "csv", "--model", model_dir)
    rows = list(csv.DictReader(io.StringIO(out)))
    assert [r["label"] for r in rows] == ["neutral", "happy", "sad", "angry"]
    assert rows[1]["text"] == "\"와, 정말 신난다!\"" and "score_sad" in rows[0]
    _, out, _ = run(capsys, "tag", str(path), "--model", model_dir)
    assert out.splitlines()[2].startswith("[슬픔 sad")
    _, out, _ = run(capsys, "tag", str(path), "--format", "tts", "--model", model_dir,
                    "--wav", "wavs/s_{index:03d}.wav", "--speaker", "7")
    assert out.splitlines() == [
        "wavs/s_000.wav|토끼는 숲속 작은 집에 살았어요.|7|0|0",
        "wavs/s_001.wav|\"와, 정말 신난다!\"|7|1|1",
        "wavs/s_002.wav|친구가 떠나서 너무 슬퍼요.|7|2|2",
        "wavs/s_003.wav|왜 내 당근을 먹었어!|7|3|3",
    ]
    _, out, _ = run(capsys, "tag", str(path), "--format", "tts", "--model", model_dir)
    assert out.splitlines()[0] == "reference.wav|토끼는 숲속 작은 집에 살았어요.|0|0|0"


def test_tts_lines_never_break_the_filelist(tmp_path, capsys, model_dir):
    path = tmp_path / "s.txt"
    path.write_text("토끼가 | 웃었어요.\t정말로.", encoding="utf-8")
    _, out, _ = run(capsys, "tag", str(path), "--format", "tts", "--model", model_dir)
    for line in out.splitlines():
        assert line.count("|") == 4


def test_predict_is_one_row_per_input_line_without_splitting(tmp_path, capsys, model_dir):
    lines = ["토끼는 숲속 작은 집에 살았어요. 와, 정말 신난다!", "", "친구가 떠나서 너무 슬퍼요.", "hello", "  "]
    path = tmp_path / "in.txt"
    path.write_text("\r\n".join(lines) + "\r\n", encoding="utf-8-sig")
    code, out, _ = run(capsys, "predict", "--input", str(path), "--format", "jsonl", "--model", model_dir)
    assert code == 0
    rows = [json.loads(line) for line in out.splitlines()]
    assert [r["text"] for r in rows] == lines
    for r in rows:
        assert set(r) >= {"text", "label", "confidence", "scores"} and r["label"] in ("neutral", "happy", "sad", "angry")
    assert rows[2]["label"] == "sad"


@pytest.mark.parametrize("content,message", [
    (b"", "empty"), (b"  \n ", "empty"), (b"just english", "no Korean"),
    (b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR", "binary"), (b"\xff\xfe\x00\xd8" * 3 + b"\x80\x81\xfe", "neither|binary"),
])
def test_bad_input_is_one_clear_line(tmp_path, capsys, model_dir, content, message):
    path = tmp_path / "bad.txt"
    path.write_bytes(content)
    code, out, err = run(capsys, "tag", str(path), "--model", model_dir)
    assert code == 2 and out == ""
    assert err.startswith("emotag: ") and len(err.splitlines()) == 1
    assert __import__("re").search(message, err)


def test_missing_file_and_model(capsys, tmp_path, model_dir):
    code, _, err = run(capsys, "tag", str(tmp_path / "none.txt"), "--model", model_dir)
    assert code == 2 and "no such file" in err
    (tmp_path / "s.txt").write_text("토끼가 웃었어요.", encoding="utf-8")
    code, _, err = run(capsys, "tag", str(tmp_path / "s.txt"), "--model", str(tmp_path))
    assert code == 2 and "emotag_model.json" in err


def test_python_dash_m_with_stdin_and_the_bundled_model():
    proc = subprocess.run([sys.executable, "-m", "emotag", "tag", "-", "--format", "jsonl"], input=STORY.encode(),
                          capture_output=True, cwd=ROOT, timeout=120)
    assert proc.returncode == 0, proc.stderr.decode()
    rows = [json.loads(line) for line in proc.stdout.decode().splitlines()]
    assert len(rows) == 4 and rows[2]["label"] == "sad"
    assert b"Traceback" not in proc.stderr
