"""Message text as the model judges it: normalised view, repeat keys, long-text chunks.

Pure functions; the pipeline and the prompt call them. See the README section "What the
model sees" for the reasons behind each choice.
"""

from bot.text.chunks import (
    CHUNK_TOKENS,
    MAX_JUDGED_CHARS,
    OVERLAP_TOKENS,
    ChunkPlan,
    TextChunk,
    plan_chunks,
    token_upper_bound,
)
from bot.text.judging import JudgedPart, JudgedText, prepare_for_judging
from bot.text.keys import RepeatKeys, clean_key, repeat_keys, violation_skeleton
from bot.text.view import JudgedView, Normalisation, judged_view

__all__ = [
    "CHUNK_TOKENS",
    "MAX_JUDGED_CHARS",
    "OVERLAP_TOKENS",
    "ChunkPlan",
    "JudgedPart",
    "JudgedText",
    "JudgedView",
    "Normalisation",
    "RepeatKeys",
    "TextChunk",
    "clean_key",
    "judged_view",
    "plan_chunks",
    "prepare_for_judging",
    "repeat_keys",
    "token_upper_bound",
    "violation_skeleton",
]
