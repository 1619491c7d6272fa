"""Labelled datasets: the project's policy cases and the OpenAI moderation 2022 set, read in place."""

from __future__ import annotations

import gzip
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from bot.policy_format import DATASET_LABELS

_GZIP_MAGIC = b"\x1f\x8b"


class Label(StrEnum):
    """What the dataset says about one text under the chosen label mapping."""

    VIOLATION = "violation"
    SAFE = "safe"
    # A mapped label is missing: the row is excluded and counted, never taken as safe.
    UNKNOWN = "unknown"


class DatasetKind(StrEnum):
    CASES = "modbot-cases"
    OPENAI_MODERATION = "openai-moderation-2022"


class DatasetError(ValueError):
    """A dataset cannot be used; the message names the file, the line and the fix."""


@dataclass(frozen=True)
class LabelledText:
    id: str
    text: str
    label: Label
    line: int
    # Only policy cases carry these: the rules a correct verdict cites, and why.
    rule_ids: tuple[str, ...] = ()
    note: str = ""


@dataclass(frozen=True)
class Dataset:
    """The rows chosen for an evaluation, and what was left out."""

    path: Path
    kind: DatasetKind
    labels: tuple[str, ...]
    limit: int | None
    texts: tuple[LabelledText, ...]  # known label only, in file order
    rows_read: int
    excluded_unknown: int

    @property
    def positives(self) -> int:
        return sum(t.label is Label.VIOLATION for t in self.texts)

    @property
    def negatives(self) -> int:
        return sum(t.label is Label.SAFE for t in self.texts)


class PolicyCase(BaseModel):
    """One line of policies/cases/<name>.jsonl."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    id: str = Field(min_length=1)
    text: str
    violation: Literal[0, 1]
    rule_ids: tuple[str, ...] = ()
    note: str = ""


def parse_labels(spec: str) -> tuple[str, ...]:
    """'H,H2' -> ('H', 'H2'); every label must be one the OpenAI set defines."""
    labels = tuple(dict.fromkeys(part.strip() for part in spec.split(",") if part.strip()))
    if not labels:
        raise DatasetError("--labels is empty: give one or more of " + ", ".join(sorted(DATASET_LABELS)))
    unknown = [label for label in labels if label not in DATASET_LABELS]
    if unknown:
        raise DatasetError(
            f"--labels names unknown label(s) {', '.join(unknown)}: the OpenAI moderation set has "
            + ", ".join(sorted(DATASET_LABELS))
        )
    return labels


def label_row(row: Mapping[str, object], labels: Sequence[str]) -> Label:
    """Positive if any mapped label is 1; negative only if every mapped label is present and 0."""
    values = [row.get(label) for label in labels]
    if any(v == 1 for v in values):
        return Label.VIOLATION
    if values and all(v == 0 for v in values):
        return Label.SAFE
    return Label.UNKNOWN


def case_label(violation: int) -> Label:
    return Label.VIOLATION if violation else Label.SAFE


def _read_lines(path: Path) -> list[str]:
    try:
        with path.open("rb") as raw:
            gzipped = raw.read(2) == _GZIP_MAGIC
        if gzipped:
            with gzip.open(path, "rt", encoding="utf-8") as fh:
                return fh.read().splitlines()
        return path.read_text(encoding="utf-8").splitlines()
    except FileNotFoundError as exc:
        raise DatasetError(f"{path}: no such file") from exc
    except (OSError, UnicodeDecodeError, EOFError) as exc:
        raise DatasetError(f"{path}: cannot read the dataset ({exc}): is it JSON lines, plain or gzip?") from exc


def _json_object(path: Path, lineno: int, raw: str) -> dict[str, object]:
    try:
        value = json.loads(raw)
    except json.JSONDecodeError as exc:
        raise DatasetError(f"{path}:{lineno}: not JSON ({exc.msg} at column {exc.colno})") from exc
    if not isinstance(value, dict):
        raise DatasetError(f"{path}:{lineno}: each line must be a JSON object")
    return value


def sniff_kind(path: Path, lines: Sequence[str]) -> DatasetKind:
    for lineno, raw in enumerate(lines, start=1):
        if not raw.strip():
            continue
        first = _json_object(path, lineno, raw)
        if "prompt" in first:
            return DatasetKind.OPENAI_MODERATION
        if "text" in first and "violation" in first:
            return DatasetKind.CASES
        raise DatasetError(
            f"{path}:{lineno}: unknown dataset format: expected policy cases (id, text, violation, "
            "rule_ids, note) or the OpenAI moderation set (prompt and labels such as H, S, V)"
        )
    raise DatasetError(f"{path}: the dataset is empty")


def dataset_kind(path: Path) -> DatasetKind:
    """Which format a dataset file holds, so a caller knows whether it needs a label mapping."""
    return sniff_kind(path, _read_lines(path))


def load_dataset(path: Path, labels: Sequence[str] = (), limit: int | None = None) -> Dataset:
    """Read a dataset in place. `limit` keeps the first N rows of the file, before exclusions.

    Limiting by file rows (not by usable rows) means the same --limit selects the same slice
    under every label mapping, so two mappings' excluded counts can be compared.
    """
    if limit is not None and limit < 1:
        raise DatasetError(f"--limit must be at least 1, got {limit}")
    lines = _read_lines(path)
    kind = sniff_kind(path, lines)
    if kind is DatasetKind.CASES:
        if labels:
            raise DatasetError(
                f"{path}: --labels applies to the OpenAI moderation set; a policy cases file "
                "carries its own 'violation' labels: drop --labels"
            )
        texts, read = _read_cases(path, lines, limit)
        return Dataset(path, kind, (), limit, tuple(texts), read, 0)
    if not labels:
        raise DatasetError(
            f"{path}: the OpenAI moderation set needs a label mapping: add 'eval_labels: H' (for "
            "example) to the policy's front matter, or pass --labels H"
        )
    return _read_openai(path, lines, tuple(labels), limit)


def load_cases(path: Path) -> list[LabelledText]:
    """A policy's labelled cases (the whole file)."""
    lines = _read_lines(path)
    texts, _ = _read_cases(path, lines, None)
    return texts


def case_problems(lines: Sequence[str]) -> list[tuple[int, str]]:
    """Every malformed line of a cases file as (line, message), instead of stopping at the first."""
    problems: list[tuple[int, str]] = []
    seen: dict[str, int] = {}
    for lineno, raw in enumerate(lines, start=1):
        if not raw.strip():
            continue
        case = _case_or_problem(raw)
        if isinstance(case, str):
            problems.append((lineno, case))
            continue
        if case.id in seen:
            problems.append((lineno, f"case id {case.id!r} is already used at line {seen[case.id]}"))
        seen.setdefault(case.id, lineno)
    return problems


def parse_case_line(raw: str) -> PolicyCase | None:
    """One well-formed case line, or None (case_problems says what is wrong with it)."""
    case = _case_or_problem(raw)
    return None if isinstance(case, str) else case


def _case_or_problem(raw: str) -> PolicyCase | str:
    try:
        data = json.loads(raw)
    except json.JSONDecodeError as exc:
        return f"not JSON ({exc.msg} at column {exc.colno})"
    if not isinstance(data, dict):
        return "each line must be a JSON object"
    try:
        return PolicyCase.model_validate(data)
    except ValidationError as exc:
        return "; ".join(f"{'.'.join(map(str, e['loc'])) or 'case'}: {e['msg'].lower()}" for e in exc.errors())


def _parse_case(path: Path, lineno: int, raw: str) -> PolicyCase:
    case = _case_or_problem(raw)
    if isinstance(case, str):
        raise DatasetError(f"{path}:{lineno}: {case}")
    return case


def _read_cases(path: Path, lines: Sequence[str], limit: int | None) -> tuple[list[LabelledText], int]:
    texts: list[LabelledText] = []
    seen: dict[str, int] = {}
    read = 0
    for lineno, raw in enumerate(lines, start=1):
        if not raw.strip():
            continue
        if limit is not None and read >= limit:
            break
        read += 1
        case = _parse_case(path, lineno, raw)
        if case.id in seen:
            raise DatasetError(f"{path}:{lineno}: case id {case.id!r} is already used at line {seen[case.id]}")
        seen[case.id] = lineno
        texts.append(LabelledText(case.id, case.text, case_label(case.violation), lineno, case.rule_ids, case.note))
    return texts, read


def _read_openai(path: Path, lines: Sequence[str], labels: tuple[str, ...], limit: int | None) -> Dataset:
    texts: list[LabelledText] = []
    excluded = 0
    read = 0
    for lineno, raw in enumerate(lines, start=1):
        if not raw.strip():
            continue
        if limit is not None and read >= limit:
            break
        read += 1
        row = _json_object(path, lineno, raw)
        prompt = row.get("prompt")
        if not isinstance(prompt, str):
            raise DatasetError(f"{path}:{lineno}: 'prompt' must be a string")
        for label in labels:
            value = row.get(label)
            # bool is an int subclass: a JSON true/false is not a 0/1 label.
            if value is not None and (isinstance(value, bool) or value not in (0, 1)):
                raise DatasetError(f"{path}:{lineno}: label {label} must be 0 or 1, got {value!r}")
        label_value = label_row(row, labels)
        if label_value is Label.UNKNOWN:
            excluded += 1
            continue
        # The set has no ids; the line number is stable, so a resumed run finds its rows.
        texts.append(LabelledText(f"L{lineno}", prompt, label_value, lineno))
    return Dataset(path, DatasetKind.OPENAI_MODERATION, labels, limit, tuple(texts), read, excluded)
