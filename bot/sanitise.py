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
# <!everyone>, <!subteam^ID>, <@U123>, and with link_names any @name. A zero-width space
# after the sigil keeps the text readable and stops both platforms from parsing a mention.
# An @ inside a word (an e-mail address) mentions nobody and is left alone.
# @everyone, @here and @channel ping from anywhere in a word ("m1@everyone"): defused there too.
_DISCORD_MENTION = re.compile(
    r"(?<![\w@\u200b])@(?=\w)|@(?=(?:everyone|here|channel)\b)|<@([!&]?)(\d+)>", re.IGNORECASE
)
_SLACK_MENTION = re.compile(r"<([!@#])([^>]*)>")
# Slack's <url|label> and Markdown's [label](url) show a label instead of where the link
# goes: quoted back in a flag, "[discord.gift](https://evil.example)" would be a phishing
# link posted by the bot. Broken the same way.
_SLACK_LABELLED_LINK = re.compile(r"<(?=[a-z][a-z0-9+.-]*:[^>|]*\|)", re.IGNORECASE)
_MARKDOWN_LINK = re.compile(r"\]\(")
# Three backticks close the code block an adapter may quote the text in.
_CODE_FENCE = re.compile(r"`{3,}")
# C0 and C1 controls other than tab and line feed: ESC sequences rewrite a terminal (the
# console prints these lines), a carriage return overwrites a line, others are invisible.
_ECHO_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")
# Bidi embeddings, overrides, isolates and marks reorder what follows them on screen
# ("Trojan Source"): echoed text could make a moderator read a different line.
_BIDI_CONTROL = re.compile("[\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069]")
_LINE_BREAKS_AND_TABS = re.compile(r"[\s\u2028\u2029]+")


def defuse_mentions(text: str) -> str:
    text = _SLACK_MENTION.sub(lambda m: f"<{_ZWSP}{m.group(1)}{m.group(2)}>", text)
    return _DISCORD_MENTION.sub(lambda m: f"<@{_ZWSP}{m.group(1)}{m.group(2)}>" if m.group(2) else f"@{_ZWSP}", text)


def defuse_markup(text: str) -> str:
    """Labelled links and code fences made inert, in Slack's and Discord's markup alike."""
    text = _SLACK_LABELLED_LINK.sub("<" + _ZWSP, text)
    text = _MARKDOWN_LINK.sub("]" + _ZWSP + "(", text)
    return _CODE_FENCE.sub(lambda m: _ZWSP.join(m.group(0)), text)


def truncate(text: str, limit: int, marker: str = "…") -> str:
    if limit <= 0:
        return ""
    if len(text) <= limit:
        return text
    return text[: max(0, limit - len(marker))] + marker


def safe_echo(text: str, limit: int) -> str:
    """User text as it may be quoted back on any platform or terminal: no pings, no labelled
    links, no code-fence breakouts, no controls or reordering, within the limit.

    The adapter still escapes its own markup (Slack's &, <, >) where it formats text.
    """
    text = _BIDI_CONTROL.sub("", valid_text(text))
    text = _ECHO_CONTROL.sub("\ufffd", text)
    return truncate(defuse_markup(defuse_mentions(text)), limit)


def safe_inline(text: str, limit: int) -> str:
    """`safe_echo` on one line: for ids, rule ids and names printed inside a line of output.

    A line break in an id could forge the next line of a listing or a replay file.
    """
    return safe_echo(_LINE_BREAKS_AND_TABS.sub(" ", valid_text(text)).strip(), limit)
