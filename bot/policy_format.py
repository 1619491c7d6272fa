"""The policy file format: parsing and checking, with problems that name file and line.

A policy is Markdown with a short front matter, in the shape OpenAI recommends for
gpt-oss-safeguard: INSTRUCTIONS, DEFINITIONS, VIOLATES, SAFE, EXAMPLES, with rule ids.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path

REQUIRED_SECTIONS = ("INSTRUCTIONS", "DEFINITIONS", "VIOLATES", "SAFE", "EXAMPLES")
OUTPUT_KEYS = ("violation", "policy_category", "rule_ids", "confidence", "rationale")
FRONT_MATTER_KEYS = {"name", "version", "description", "eval_labels", "sensitive", "author_notice"}
AUTHOR_NOTICES = ("removal", "support")
# The last section, optional: the policy's own words to the author. It is stored with the
# policy and never sent to the model (everything before it is the model's text).
NOTICE_HEADING = "## AUTHOR NOTICE"
DATASET_LABELS = {"S", "H", "V", "HR", "SH", "S3", "H2", "V2"}
VAGUE_WORDS = ("generally", "usually", "often", "typically", "sometimes", "may be")
TOKENS_WARN = 600
TOKENS_MAX = 10_000

NAME_RE = re.compile(r"^[a-z0-9]+(?:-[a-z0-9]+)*$")
RULE_ID_RE = re.compile(r"\b[A-Z]{1,5}[0-9]{1,2}\.[a-z0-9]{1,3}\b")
RULE_LINE_RE = re.compile(r"^-\s+([A-Z]{1,5}[0-9]{1,2}\.[a-z0-9]{1,3})\s*:\s*(\S.*)$")
HEADING_RE = re.compile(r"^##\s+([A-Z]+)\b")
_TOKEN_RE = re.compile(r"\w+|[^\w\s]+")


def estimate_tokens(text: str) -> int:
    """Words plus runs of punctuation: close to o200k counts for English policy prose.

    The real tokenizer's vocabulary cannot be downloaded at run time, so this estimate
    stands in for it; it only gates warnings and the hard limit.
    """
    return len(_TOKEN_RE.findall(text))


class Severity(StrEnum):
    ERROR = "error"
    WARNING = "warning"


@dataclass(frozen=True)
class Problem:
    severity: Severity
    source: str
    line: int
    message: str

    def __str__(self) -> str:
        return f"{self.source}:{self.line}: {self.severity}: {self.message}"


class PolicyFormatError(ValueError):
    def __init__(self, problems: list[Problem]) -> None:
        self.problems = problems
        super().__init__("\n".join(str(p) for p in problems))


@dataclass(frozen=True)
class Rule:
    id: str
    violates: bool
    text: str
    line: int


@dataclass(frozen=True)
class Example:
    content: str
    answer: dict[str, object]
    line: int


@dataclass
class PolicyDocument:
    source: str
    name: str = ""
    version: int = 1
    description: str = ""
    eval_labels: tuple[str, ...] = ()
    # Flags for a sensitive policy carry no excerpt of the content, only a link to it.
    sensitive: bool = False
    # "removal": rule ids and their text, with an appeal; "support": the AUTHOR NOTICE section's
    # caring words and resources, no removal wording, no appeal, never a strike.
    author_notice: str = "removal"
    notice_text: str = ""
    title: str = ""
    body: str = ""  # everything after the front matter: what the model reads
    sections: dict[str, int] = field(default_factory=dict)  # name -> line
    rules: list[Rule] = field(default_factory=list)
    examples: list[Example] = field(default_factory=list)
    problems: list[Problem] = field(default_factory=list)
    tokens: int = 0

    @property
    def errors(self) -> list[Problem]:
        return [p for p in self.problems if p.severity is Severity.ERROR]

    @property
    def warnings(self) -> list[Problem]:
        return [p for p in self.problems if p.severity is Severity.WARNING]

    @property
    def rule_ids(self) -> set[str]:
        return {r.id for r in self.rules}


class _Checker:
    def __init__(self, doc: PolicyDocument, lines: list[str]) -> None:
        self.doc = doc
        self.lines = lines

    def error(self, line: int, message: str) -> None:
        self.doc.problems.append(Problem(Severity.ERROR, self.doc.source, line, message))

    def warn(self, line: int, message: str) -> None:
        self.doc.problems.append(Problem(Severity.WARNING, self.doc.source, line, message))


def parse_policy(text: str, source: str = "<policy>", expected_name: str | None = None) -> PolicyDocument:
    """Parse and check a policy. Never raises: problems are collected on the document."""
    doc = PolicyDocument(source=source)
    lines = text.splitlines()
    check = _Checker(doc, lines)
    body_start = _parse_front_matter(lines, check)
    if expected_name is not None and doc.name and doc.name != expected_name:
        check.error(2, f"name {doc.name!r} does not match the file name {expected_name!r}")
    notice_at = next((i for i in range(body_start, len(lines)) if lines[i].rstrip() == NOTICE_HEADING), len(lines))
    doc.notice_text = "\n".join(lines[notice_at + 1 :]).strip()
    model_lines = lines[:notice_at]
    doc.body = "\n".join(model_lines[body_start:]).strip() + "\n"
    doc.tokens = estimate_tokens(doc.body)
    _parse_body(model_lines, body_start, check)
    _check_rules_and_examples(check)
    _check_style(model_lines, body_start, check)
    _check_notice(notice_at, check)
    return doc


def _check_notice(notice_at: int, check: _Checker) -> None:
    doc = check.doc
    if doc.author_notice == "support" and not doc.notice_text:
        check.error(
            notice_at + 1 if notice_at < len(check.lines) else 1,
            f"author_notice: support needs a '{NOTICE_HEADING}' section at the end: the caring words and "
            "support resources the author is sent instead of a removal notice",
        )


def rules_in(body: str) -> list[Rule]:
    """The rules a policy body defines (VIOLATES and SAFE lines), in order, without checking anything else."""
    rules: list[Rule] = []
    section = ""
    for lineno, raw in enumerate(body.splitlines(), start=1):
        line = raw.rstrip()
        heading = HEADING_RE.match(line)
        if heading:
            section = heading.group(1)
            continue
        m = RULE_LINE_RE.match(line)
        if m and section in ("VIOLATES", "SAFE"):
            rules.append(Rule(m.group(1), section == "VIOLATES", m.group(2).strip(), lineno))
    return rules


def load_policy_file(path: Path) -> PolicyDocument:
    """Read a policy file; raise PolicyFormatError (file:line) if it has errors."""
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise PolicyFormatError([Problem(Severity.ERROR, str(path), 0, f"cannot read: {exc}")]) from exc
    doc = parse_policy(text, source=str(path), expected_name=path.stem)
    if doc.errors:
        raise PolicyFormatError(doc.errors)
    return doc


def _parse_front_matter(lines: list[str], check: _Checker) -> int:
    doc = check.doc
    if not lines or lines[0].strip() != "---":
        check.error(1, "missing front matter: the file must start with a '---' line")
        return 0
    end = next((i for i in range(1, len(lines)) if lines[i].strip() == "---"), None)
    if end is None:
        check.error(1, "front matter is not closed: add a '---' line after its keys")
        return len(lines)
    seen: set[str] = set()
    for i in range(1, end):
        lineno = i + 1
        raw = lines[i]
        if not raw.strip() or raw.lstrip().startswith("#"):  # a comment, as in YAML
            continue
        key, sep, value = raw.partition(":")
        key, value = key.strip(), value.strip()
        if not sep:
            check.error(lineno, f"front matter line is not 'key: value': {raw.strip()!r}")
            continue
        if key not in FRONT_MATTER_KEYS:
            check.error(lineno, f"unknown front matter key {key!r}; allowed: {sorted(FRONT_MATTER_KEYS)}")
            continue
        if key in seen:
            check.error(lineno, f"front matter key {key!r} appears twice")
        seen.add(key)
        if key == "name":
            if not NAME_RE.match(value):
                check.error(lineno, f"name {value!r} must be lowercase letters, digits and hyphens")
            doc.name = value
        elif key == "version":
            if not value.isdigit() or int(value) < 1:
                check.error(lineno, f"version {value!r} must be a whole number from 1")
            else:
                doc.version = int(value)
        elif key == "description":
            doc.description = value
        elif key == "sensitive":
            if value not in ("true", "false"):
                check.error(lineno, f"sensitive {value!r} must be true or false")
            doc.sensitive = value == "true"
        elif key == "author_notice":
            if value not in AUTHOR_NOTICES:
                check.error(lineno, f"author_notice {value!r} must be one of {', '.join(AUTHOR_NOTICES)}")
            else:
                doc.author_notice = value
        elif key == "eval_labels":
            labels = tuple(v.strip() for v in value.split(",") if v.strip())
            unknown = [v for v in labels if v not in DATASET_LABELS]
            if unknown:
                check.error(lineno, f"unknown eval_labels {unknown}; known: {sorted(DATASET_LABELS)}")
            doc.eval_labels = labels
    for key in ("name", "description"):
        if key not in seen:
            check.error(1, f"front matter lacks {key!r}")
    return end + 1


def _parse_body(lines: list[str], start: int, check: _Checker) -> None:
    doc = check.doc
    section: str | None = None
    pending_content: tuple[str, int] | None = None
    for i in range(start, len(lines)):
        lineno = i + 1
        line = lines[i].rstrip()
        if line.startswith("# ") and not doc.title:
            doc.title = line[2:].strip()
            continue
        if line.startswith("## "):
            m = HEADING_RE.match(line)
            name = m.group(1) if m else line[3:].strip()
            if name not in REQUIRED_SECTIONS:
                check.error(lineno, f"unknown section {name!r}; sections are {', '.join(REQUIRED_SECTIONS)}")
            elif name in doc.sections:
                check.error(lineno, f"section {name} appears twice (first at line {doc.sections[name]})")
            else:
                doc.sections[name] = lineno
            section = name
            continue
        if section in ("VIOLATES", "SAFE") and line.startswith("- "):
            m = RULE_LINE_RE.match(line)
            if not m:
                check.error(lineno, "a rule must read '- ID: text', with an id such as HB1.a")
                continue
            rule_id, text = m.group(1), m.group(2)
            clash = next((r for r in doc.rules if r.id == rule_id), None)
            if clash:
                check.error(lineno, f"rule id {rule_id} is already defined at line {clash.line}")
                continue
            doc.rules.append(Rule(rule_id, section == "VIOLATES", text, lineno))
        elif section == "EXAMPLES":
            if line.startswith("Content:"):
                if pending_content:
                    check.error(pending_content[1], "example 'Content:' has no 'Answer:' line after it")
                try:
                    content = json.loads(line[len("Content:") :])
                except json.JSONDecodeError as exc:
                    check.error(lineno, f"example content must be a JSON string: {exc.msg}")
                    pending_content = None
                    continue
                if not isinstance(content, str):
                    check.error(lineno, "example content must be a JSON string in double quotes")
                    continue
                pending_content = (content, lineno)
            elif line.startswith("Answer:"):
                if not pending_content:
                    check.error(lineno, "example 'Answer:' without a 'Content:' line before it")
                    continue
                _parse_answer(line[len("Answer:") :], lineno, pending_content[0], check)
                pending_content = None
    if pending_content:
        check.error(pending_content[1], "example 'Content:' has no 'Answer:' line after it")
    order = [s for s in REQUIRED_SECTIONS if s in doc.sections]
    for name in REQUIRED_SECTIONS:
        if name not in doc.sections:
            check.error(len(lines), f"missing section '## {name}'")
    if order != sorted(order, key=lambda s: doc.sections[s]):
        check.error(doc.sections[order[0]], f"sections must come in this order: {', '.join(REQUIRED_SECTIONS)}")


def _parse_answer(raw: str, lineno: int, content: str, check: _Checker) -> None:
    try:
        answer = json.loads(raw)
    except json.JSONDecodeError as exc:
        check.error(lineno, f"example answer must be one-line JSON: {exc.msg}")
        return
    if not isinstance(answer, dict) or set(answer) != set(OUTPUT_KEYS):
        check.error(lineno, f"example answer must have exactly the keys {', '.join(OUTPUT_KEYS)}")
        return
    if answer["violation"] not in (0, 1):
        check.error(lineno, "example answer 'violation' must be 0 or 1")
    if answer["confidence"] not in ("low", "medium", "high"):
        check.error(lineno, "example answer 'confidence' must be low, medium or high")
    if not isinstance(answer["rule_ids"], list):
        check.error(lineno, "example answer 'rule_ids' must be a list")
        return
    check.doc.examples.append(Example(content, answer, lineno))


def _check_rules_and_examples(check: _Checker) -> None:
    doc = check.doc
    defined = {r.id: r for r in doc.rules}
    if "VIOLATES" in doc.sections and not any(r.violates for r in doc.rules):
        check.error(doc.sections["VIOLATES"], "VIOLATES has no rules ('- ID: text')")
    if "SAFE" in doc.sections and not any(not r.violates for r in doc.rules):
        check.error(doc.sections["SAFE"], "SAFE has no rules ('- ID: text')")
    cited: set[str] = set()
    for ex in doc.examples:
        ids = [str(i) for i in ex.answer["rule_ids"]]  # type: ignore[attr-defined]
        category = ex.answer["policy_category"]
        if category is not None:
            ids.append(str(category))
        for rule_id in ids:
            if rule_id not in defined:
                check.error(ex.line, f"example cites rule id {rule_id}, which the policy does not define")
        cited.update(ids)
        if ex.answer["violation"] == 1 and (
            category is None or category not in defined or not defined[str(category)].violates
        ):
            check.error(ex.line, "a violating example's policy_category must be a VIOLATES rule id")
        if ex.answer["violation"] == 0 and category is not None:
            check.error(ex.line, "a safe example's policy_category must be null")
    if "EXAMPLES" in doc.sections and not doc.examples:
        check.error(doc.sections["EXAMPLES"], "EXAMPLES has no 'Content:' / 'Answer:' pairs")
    for rule in doc.rules:
        if rule.id not in cited:
            check.warn(rule.line, f"rule id {rule.id} is not used by any example")


def _check_style(lines: list[str], start: int, check: _Checker) -> None:
    doc = check.doc
    instructions_at = doc.sections.get("INSTRUCTIONS")
    if instructions_at:
        end = min((n for n in doc.sections.values() if n > instructions_at), default=len(lines))
        block = "\n".join(lines[instructions_at:end])
        missing = [k for k in OUTPUT_KEYS if k not in block]
        if missing:
            check.error(
                instructions_at, f"INSTRUCTIONS must state the JSON output format; missing keys: {', '.join(missing)}"
            )
        if "Conflicts:" not in block:
            check.warn(instructions_at, "INSTRUCTIONS should say which rule wins in a conflict ('Conflicts: ...')")
        if "Ambiguous:" not in block:
            check.warn(instructions_at, "INSTRUCTIONS should say what to do in ambiguous cases ('Ambiguous: ...')")
    examples_at = doc.sections.get("EXAMPLES")
    if examples_at and examples_at < len(lines):
        first = next((ln for ln in lines[examples_at:] if ln.strip()), "")
        if "JSON" not in first:
            check.warn(examples_at, "repeat the output format just before the examples (a line mentioning JSON)")
    if doc.tokens > TOKENS_MAX:
        check.error(start + 1, f"policy is about {doc.tokens} tokens; the limit is {TOKENS_MAX}: compress it")
    elif doc.tokens > TOKENS_WARN:
        check.warn(start + 1, f"policy is about {doc.tokens} tokens; 400-600 works best")
    for i in range(start, len(lines)):
        lowered = lines[i].lower()
        for word in VAGUE_WORDS:
            col = lowered.find(word)
            if col >= 0 and re.search(rf"\b{re.escape(word)}\b", lowered):
                check.warn(i + 1, f"vague word {word!r} (column {col + 1}): say exactly when the rule applies")
