"""Where a delivered message stands among the revisions already seen: the rule every store applies.

No SQL here: the SQLite store and the test fake both hand this module the revisions they
hold for one message, so they cannot disagree on what an edit, a replay or a stale
revision is.

- A message never seen is revision 1.
- The same text as the newest revision is a repeat: gateways and Slack replay events, and
  Discord sends an update when only a link preview changed. Nothing is recorded.
- Other text, written at or after the newest revision's time, is a new revision (an edit),
  judged again. A tie in time goes to the later arrival.
- Other text written before the newest revision is stale (a replayed old edit arriving
  late): it is recorded, so a further replay is a repeat, but never judged. The latest
  revision wins.
- Once the author deleted the message, nothing more of it is taken.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

from bot.domain import Message


class IntakeOutcome(StrEnum):
    QUEUED = "queued"  # a new message or a new revision, waiting to be judged
    HELD = "held"  # a new revision held back: its author edits faster than the limit
    STALE = "stale"  # older than a revision already seen: recorded, never judged
    REPEAT = "repeat"  # this revision was seen before: nothing changes
    DELETED = "deleted"  # the author deleted the message: nothing more of it is taken


@dataclass(frozen=True)
class KnownRevision:
    revision: int
    # None for a row recorded before revisions existed (its text is unknown) or a tombstone.
    digest: str | None
    revised_at: datetime
    deleted: bool = False


@dataclass(frozen=True)
class Placement:
    outcome: IntakeOutcome
    revision: int | None = None  # the revision number to record; None when nothing is recorded


def text_digest(text: str) -> str:
    """What identifies a revision once its text is cleared from the queue (128 bits of SHA-256)."""
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:32]


def place(known: Sequence[KnownRevision], message: Message, digest: str) -> Placement:
    """Where `message` (with text digest `digest`) stands among the revisions `known` of it."""
    if any(k.deleted for k in known):
        return Placement(IntakeOutcome.DELETED)
    if not known:
        return Placement(IntakeOutcome.QUEUED, 1)
    latest = max(known, key=lambda k: (k.revised_at, k.revision))
    # A row from before revisions existed has no digest: an unedited delivery of it is the
    # original message replayed; only a delivery marked as an edit can be a new revision.
    if digest == latest.digest or (latest.digest is None and not message.edited):
        return Placement(IntakeOutcome.REPEAT)
    number = max(k.revision for k in known) + 1
    if message.revised_at >= latest.revised_at:
        return Placement(IntakeOutcome.QUEUED, number)
    if any(k.digest == digest for k in known):
        return Placement(IntakeOutcome.REPEAT)
    return Placement(IntakeOutcome.STALE, number)


__all__ = ["IntakeOutcome", "KnownRevision", "Placement", "place", "text_digest"]
