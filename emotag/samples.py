"""Short example stories (written for emotag, not taken from any book) used by the UI, the CLI and the tests.

Each mixes narration with happy, sad and angry dialogue so that a tagged story shows several colours.
"""
from __future__ import annotations

SAMPLES: dict[str, str] = {
    "토토의 커다란 당근": (
        "옛날 옛적, 숲속 작은 굴에 토끼 토토가 살았어요.\n"
        "어느 날 아침, 토토는 밭에서 커다란 당근을 뽑았어요.\n"
        "\"와, 이렇게 큰 당근은 처음이야! 정말 신난다!\"\n"
        "그런데 점심을 먹고 돌아와 보니 당근이 사라지고 없었어요.\n"
        "\"누가 내 당근을 가져갔어! 정말 화가 나!\"\n"
        "토토는 풀밭에 주저앉아 훌쩍훌쩍 울었어요.\n"
        "\"하루 종일 기다렸는데, 너무 슬퍼.\"\n"
        "그때 다람쥐가 당근을 굴리며 뛰어왔어요.\n"
        "\"고마워, 다람쥐야! 우리 같이 나눠 먹자!\"\n"
    ),
    "할머니의 빨간 목도리": (
        "겨울이 오자 마을에는 하얀 눈이 소복소복 쌓였어요.\n"
        "지우는 할머니가 떠 주신 빨간 목도리를 가장 아꼈어요.\n"
        "\"할머니, 목도리가 정말 따뜻해요! 너무 좋아요!\"\n"
        "그런데 눈싸움을 하다가 목도리를 잃어버리고 말았어요.\n"
        "\"할머니가 주신 건데 어떡해, 자꾸 눈물이 나요.\"\n"
        "옆집 형이 그 모습을 보고 킥킥 웃었어요.\n"
        "\"놀리지 마! 형은 아무것도 모르면서 왜 그래!\"\n"
        "다음 날 아침, 눈사람 목에 빨간 목도리가 감겨 있었어요.\n"
    ),
    "어부 아저씨의 작은 배": (
        "바닷가 마을에 낡은 나무배 한 척이 있었어요.\n"
        "어부 아저씨는 날마다 그 배를 타고 고기를 잡으러 나갔어요.\n"
        "어느 밤 커다란 폭풍이 몰아쳐 배가 부서지고 말았어요.\n"
        "\"평생 함께한 배인데, 이제 다시는 바다에 못 나가겠구나.\"\n"
        "\"누가 밧줄을 제대로 안 묶었어? 정말 화가 나서 참을 수가 없어!\"\n"
        "마을 사람들이 하나둘 모여 새 배를 만들기 시작했어요.\n"
        "\"세상에, 이렇게 멋진 배라니! 정말 고마워요, 너무 행복해요!\"\n"
    ),
}

# How a storyteller would voice each sentence (in split order), tagged by us like the shared stories.
SAMPLE_LABELS: dict[str, list[str]] = {
    "토토의 커다란 당근": ["neutral", "neutral", "happy", "neutral", "angry", "sad", "sad", "neutral", "happy"],
    "할머니의 빨간 목도리": ["neutral", "neutral", "happy", "sad", "sad", "neutral", "angry", "happy"],
    "어부 아저씨의 작은 배": ["neutral", "neutral", "sad", "sad", "angry", "neutral", "happy"],
}

__all__ = ["SAMPLES", "SAMPLE_LABELS"]
