"""Reading labelled data: label mapping, unknown labels, the OpenAI format and policy cases."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import pytest

from bot.evaluation import DatasetError, DatasetKind, Label, label_row, load_cases, load_dataset, parse_labels
from tests.conftest import POLICY_DIR
from tests.evaluation._cli import DATA, OPENAI_SAMPLE


@pytest.mark.parametrize(
    ("row", "labels", "expected"),
    [
        ({"H": 1, "H2": 0}, ("H",), Label.VIOLATION),
        ({"H": 0, "H2": 0}, ("H", "H2"), Label.SAFE),
        ({"H": 0}, ("H", "H2"), Label.UNKNOWN),  # H2 missing: not a negative
        ({"H2": 1}, ("H", "H2"), Label.VIOLATION),  # any mapped positive is enough
        ({"S": 1}, ("H",), Label.UNKNOWN),
        ({"H": None}, ("H",), Label.UNKNOWN),
        ({}, ("H",), Label.UNKNOWN),
        ({"H": 0, "H2": 1}, ("H", "H2"), Label.VIOLATION),
    ],
)
def test_label_mapping(row: dict[str, object], labels: tuple[str, ...], expected: Label) -> None:
    assert label_row(row, labels) is expected


def test_parse_labels() -> None:
    assert parse_labels("H, H2,H") == ("H", "H2")
    with pytest.raises(DatasetError, match=r"unknown label.*HATE"):
        parse_labels("H,HATE")
    with pytest.raises(DatasetError, match="empty"):
        parse_labels(" , ")


def test_openai_sample_under_h_excludes_unknown_rows() -> None:
    d = load_dataset(OPENAI_SAMPLE, ("H",))
    assert d.kind is DatasetKind.OPENAI_MODERATION
    assert d.rows_read == 13
    assert d.excluded_unknown == 3  # L6, L7 and L13 have no H label
    assert [t.id for t in d.texts] == ["L1", "L2", "L3", "L4", "L5", "L8", "L9", "L10", "L11", "L12"]
    assert (d.positives, d.negatives) == (4, 6)
    assert all(t.label is not Label.UNKNOWN for t in d.texts)


def test_openai_sample_under_h_and_h2() -> None:
    d = load_dataset(OPENAI_SAMPLE, ("H", "H2"))
    ids = {t.id: t.label for t in d.texts}
    assert d.excluded_unknown == 3  # L6, L7, and now L10 (H=0 but H2 missing)
    assert "L10" not in ids
    assert ids["L13"] is Label.VIOLATION  # only H2=1
    assert ids["L9"] is Label.VIOLATION  # H=1, H2 missing: still positive
    assert (d.positives, d.negatives) == (5, 5)


def test_limit_counts_file_rows_before_exclusion() -> None:
    d = load_dataset(OPENAI_SAMPLE, ("H",), limit=7)
    assert d.rows_read == 7
    assert d.excluded_unknown == 2  # L6 and L7
    assert [t.id for t in d.texts] == ["L1", "L2", "L3", "L4", "L5"]


def test_plain_jsonl_reads_like_gzip(tmp_path: Path) -> None:
    plain = tmp_path / "sample.jsonl"
    plain.write_bytes(gzip.decompress(OPENAI_SAMPLE.read_bytes()))
    assert load_dataset(plain, ("H",)).texts == load_dataset(OPENAI_SAMPLE, ("H",)).texts


def test_openai_set_needs_a_mapping() -> None:
    with pytest.raises(DatasetError, match="eval_labels"):
        load_dataset(OPENAI_SAMPLE, ())


def test_bad_label_value_names_file_and_line(tmp_path: Path) -> None:
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"prompt": "a", "H": 0}\n{"prompt": "b", "H": "yes"}\n', encoding="utf-8")
    with pytest.raises(DatasetError, match=r"bad\.jsonl:2: label H must be 0 or 1"):
        load_dataset(bad, ("H",))


def test_boolean_is_not_a_label(tmp_path: Path) -> None:
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"prompt": "a", "H": true}\n', encoding="utf-8")
    with pytest.raises(DatasetError, match=":1: label H"):
        load_dataset(bad, ("H",))


def test_not_json_names_file_and_line(tmp_path: Path) -> None:
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"prompt": "a", "H": 0}\n\n{"prompt": \n', encoding="utf-8")
    with pytest.raises(DatasetError, match=r"bad\.jsonl:3: not JSON"):
        load_dataset(bad, ("H",))


def test_unknown_format_and_missing_file(tmp_path: Path) -> None:
    odd = tmp_path / "odd.jsonl"
    odd.write_text('{"body": "a"}\n', encoding="utf-8")
    with pytest.raises(DatasetError, match="unknown dataset format"):
        load_dataset(odd, ("H",))
    with pytest.raises(DatasetError, match="no such file"):
        load_dataset(tmp_path / "absent.jsonl", ("H",))


def test_policy_cases_carry_their_own_labels() -> None:
    path = POLICY_DIR / "cases" / "hate-speech.jsonl"
    d = load_dataset(path)
    assert d.kind is DatasetKind.CASES
    assert d.excluded_unknown == 0
    raw = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    assert [t.id for t in d.texts] == [r["id"] for r in raw]
    assert [t.label is Label.VIOLATION for t in d.texts] == [r["violation"] == 1 for r in raw]
    with pytest.raises(DatasetError, match="drop --labels"):
        load_dataset(path, ("H",))


def test_cases_reader_keeps_rules_and_notes() -> None:
    cases = load_cases(DATA / "mixed-cases.jsonl")
    assert cases[1].id == "mx-02"
    assert cases[1].rule_ids == ("GD1.b",)
    assert "fake model misses" in cases[1].note
    assert cases[1].line == 2


def test_cases_reader_refuses_duplicates_and_bad_lines(tmp_path: Path) -> None:
    dup = tmp_path / "dup.jsonl"
    dup.write_text(
        '{"id": "a", "text": "x", "violation": 0}\n{"id": "a", "text": "y", "violation": 1}\n', encoding="utf-8"
    )
    with pytest.raises(DatasetError, match=r"dup\.jsonl:2: case id 'a' is already used at line 1"):
        load_cases(dup)
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"id": "a", "text": "x", "violation": 2}\n', encoding="utf-8")
    with pytest.raises(DatasetError, match=r"bad\.jsonl:1: violation"):
        load_cases(bad)
