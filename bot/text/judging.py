"""One message text made ready for the model: its view, its chunks, its repeat keys, its record."""

from __future__ import annotations

from dataclasses import dataclass

from bot.text.chunks import CHUNK_TOKENS, MAX_JUDGED_CHARS, OVERLAP_TOKENS, ChunkPlan, plan_chunks, token_upper_bound
from bot.text.keys import RepeatKeys, repeat_keys
from bot.text.view import JudgedView, judged_view


@dataclass(frozen=True)
class JudgedPart:
    """What one model call judges.

    `text`: the normalised text of this part (neutralised; JSON-encode it as content).
    `original`: the message as written, only when the message is a single part and
    normalising changed more than spacing (see `JudgedView.original`).
    `label`: where this part sits in a longer message, for the prompt; None when whole.
    """

    text: str
    original: str | None
    label: str | None


@dataclass(frozen=True)
class JudgedText:
    view: JudgedView
    plan: ChunkPlan
    keys: RepeatKeys
    parts: tuple[JudgedPart, ...]

    @property
    def record(self) -> str:
        """What was done to the text, in words, for the case (no message content in it)."""
        notes = self.view.notes
        return self.plan.summary + (f"; {notes}" if notes else "")


def prepare_for_judging(
    text: str,
    *,
    chunk_tokens: int = CHUNK_TOKENS,
    overlap_tokens: int = OVERLAP_TOKENS,
    max_chars: int = MAX_JUDGED_CHARS,
) -> JudgedText:
    """The parts the model judges for one message text (one call per part and policy).

    The normalised text is what is chunked and capped: invisible padding cannot push abuse
    past the cap, and a clean key names exactly the text the model read. A message with
    no text to judge has no parts.
    """
    view = judged_view(text)
    parts: tuple[JudgedPart, ...]
    plan = plan_chunks(view.normalised, chunk_tokens=chunk_tokens, overlap_tokens=overlap_tokens, max_chars=max_chars)
    if plan.whole:
        original = view.original
        # The original rides along only while it fits the budget as well; past that the
        # notes still tell the model what was changed.
        if original is not None and token_upper_bound(original) > chunk_tokens:
            original = None
        parts = (JudgedPart(view.normalised, original, None),) if plan.chunks else ()
    else:
        parts = tuple(JudgedPart(chunk.text, None, plan.label(i)) for i, chunk in enumerate(plan.chunks))
    return JudgedText(view, plan, repeat_keys(text, view), parts)
