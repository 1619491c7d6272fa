"""Reading a server's stored settings that today's ranges refuse, without breaking any other server.

A settings row written before a range existed (retention_days=1000000) must not make every
read of every server's settings fail, nor stop a job for all of them. Such a row is read
as close to what the admin asked as the ranges allow: a number out of range is clamped to
the nearest bound, an id list loses only the entry that is no longer valid, anything else
invalid falls back to its default. Each repair is said in words for the log.
"""

from __future__ import annotations

import json
from typing import Any

from pydantic import ValidationError
from pydantic_core import ErrorDetails

from bot.domain import ServerSettings, setting_range

# Each pass repairs every error pydantic reported; nested defaults can reveal one more level.
_MAX_PASSES = 5


def settings_from_row(platform: str, server_id: str, raw: str) -> tuple[ServerSettings, list[str]]:
    """The stored settings as today's model accepts them, and what had to be repaired (empty if nothing)."""
    try:
        return ServerSettings.model_validate_json(raw), []
    except ValidationError:
        pass
    repairs: list[str] = []
    try:
        data = json.loads(raw)
    except ValueError:
        data = None
    if not isinstance(data, dict):
        return ServerSettings(platform=platform, server_id=server_id), ["the stored settings are not a JSON object"]
    data.update(platform=platform, server_id=server_id)
    for _ in range(_MAX_PASSES):
        try:
            return ServerSettings.model_validate(data), repairs
        except ValidationError as exc:
            removals: list[tuple[list[Any], int]] = []
            for error in exc.errors():
                repairs.append(_repair(data, error, removals))
            # Several bad entries of one list: remove from the end, so earlier indexes still hold.
            for container, index in sorted(removals, key=lambda r: -r[1]):
                if index < len(container):
                    del container[index]
    return ServerSettings(platform=platform, server_id=server_id), [*repairs, "fell back to the defaults"]


def _repair(data: dict[str, Any], error: ErrorDetails, removals: list[tuple[list[Any], int]]) -> str:
    loc = tuple(error["loc"])
    value = error.get("input")
    where = ".".join(str(p) for p in loc)
    parent: Any = data
    for part in loc[:-1]:
        try:
            parent = parent[part]
        except (KeyError, IndexError, TypeError):
            return _default(data, loc, where)
    last = loc[-1] if loc else None
    bounds = setting_range(loc)
    number = isinstance(value, int | float) and not isinstance(value, bool) and value == value  # NaN != NaN
    bounded = bounds is not None and bounds.low is not None and bounds.high is not None
    if bounded and number and isinstance(parent, dict):
        assert bounds is not None and bounds.low is not None and bounds.high is not None
        assert isinstance(value, int | float)
        clamped = bounds.high if value >= bounds.high else bounds.low if value <= bounds.low else int(value)
        parent[last] = clamped
        return f"{where}={value!r} is out of range {bounds.low}-{bounds.high}: read as {clamped}"
    if error["type"] == "too_long" and isinstance(value, list) and isinstance(parent, dict):
        keep = int((error.get("ctx") or {}).get("max_length", len(value)))
        parent[last] = value[:keep]
        return f"{where}: {len(value)} entries, more than {keep}: read as the first {keep}"
    if isinstance(last, int) and isinstance(parent, list):
        removals.append((parent, last))
        return f"{where}: dropped the entry {value!r}, no longer valid"
    if isinstance(parent, dict) and isinstance(last, str) and last in parent:
        del parent[last]
        return f"{where}={value!r} is not valid: read as its default"
    return _default(data, loc, where)


def _default(data: dict[str, Any], loc: tuple[int | str, ...], where: str) -> str:
    top = loc[0] if loc else None
    if isinstance(top, str) and top in data:
        del data[top]
    return f"{where}: not valid; {top} read as its default"
