"""Hostile text made safe: for the model's prompt, and for echoing back into chat."""

from __future__ import annotations

import re
import unicodedata

# Harmony (gpt-oss) special tokens are all spelled <|...|>. Breaking the two-character
# delimiters breaks every one of them, including ones not yet invented, while the text
# stays readable to the model. Other chat templates' markers are broken the same way in
# case the server runs another model family.
_FULLWIDTH_BAR = "\uff5c"
_OTHER_MARKERS = re.compile(r"<(/?)(start_of_turn|end_of_turn|s|bos|eos|im_start|im_end)>|\[(/?)INST\]", re.IGNORECASE)
_INVISIBLE = re.compile("[\u200b-\u200f\u2060-\u2064\ufeff\u00ad]")
_WHITESPACE = re.compile(r"\s+")
_LONE_SURROGATE_OR_NUL = re.compile("[\ud800-\udfff\x00]")


def valid_text(text: str) -> str:
    """Text any codec, database and client accepts: lone surrogates and NUL become U+FFFD.

    JSON from a platform (or a file) may encode a lone surrogate ("\\ud800"); Python
    decodes it into a str that cannot be encoded to UTF-8, and would fail far downstream.
    """
    return _LONE_SURROGATE_OR_NUL.sub("\ufffd", text)


def neutralise_control_tokens(text: str) -> str:
    """Make any model control sequence in user text inert, so it cannot forge turns."""
    text = text.replace("<|", "<" + _FULLWIDTH_BAR).replace("|>", _FULLWIDTH_BAR + ">")

    def _break(m: re.Match[str]) -> str:
        return m.group(0).replace("<", "\u2039").replace(">", "\u203a").replace("[", "\u27e6").replace("]", "\u27e7")

    return _OTHER_MARKERS.sub(_break, text)


def normalise_for_repeats(text: str) -> str:
    """The form under which two spam messages count as the same message."""
    text = unicodedata.normalize("NFKC", text)
    text = _INVISIBLE.sub("", text)
    return _WHITESPACE.sub(" ", text).strip().casefold()


# ---------------------------------------------------------------- echoing into chat

_ZWSP = "\u200b"
# Discord: @everyone, @here, <@id>, <@!id>, <@&role>; Slack: <!channel>, <!here>,
# <!everyone>, <!subteam^ID>, <@U123>. A zero-width space after the sigil keeps the
# text readable and stops both platforms from parsing a mention.
_DISCORD_MENTION = re.compile(r"@(everyone|here)|<@([!&]?)(\d+)>", re.IGNORECASE)
_SLACK_MENTION = re.compile(r"<([!@#])([^>]*)>")


def defuse_mentions(text: str) -> str:
    text = _DISCORD_MENTION.sub(
        lambda m: f"@{_ZWSP}{m.group(1)}" if m.group(1) else f"<@{_ZWSP}{m.group(2)}{m.group(3)}>", text
    )
    return _SLACK_MENTION.sub(lambda m: f"<{_ZWSP}{m.group(1)}{m.group(2)}>", text)


def truncate(text: str, limit: int, marker: str = "…") -> str:
    if limit <= 0:
        return ""
    if len(text) <= limit:
        return text
    return text[: max(0, limit - len(marker))] + marker


def safe_echo(text: str, limit: int) -> str:
    """User text as it may be quoted back on any platform: no pings, within the limit."""
    return truncate(defuse_mentions(text), limit)
