"""`policy lint`: a policy file's problems as file:line messages, its token estimate, and its cases."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from bot.evaluation.datasets import case_problems, parse_case_line
from bot.policy_format import PolicyDocument, Problem, Severity, parse_policy

# The issue asks each policy for at least this many labelled cases, both kinds present.
MIN_CASES = 12


def cases_path_for(policy_path: Path) -> Path:
    """Where a policy's labelled cases live: policies/cases/<name>.jsonl beside policies/<name>.md."""
    return policy_path.parent / "cases" / f"{policy_path.stem}.jsonl"


@dataclass(frozen=True)
class PolicyLint:
    path: Path
    document: PolicyDocument | None  # None: the file could not be read
    problems: tuple[Problem, ...]

    @property
    def errors(self) -> list[Problem]:
        return [p for p in self.problems if p.severity is Severity.ERROR]

    @property
    def warnings(self) -> list[Problem]:
        return [p for p in self.problems if p.severity is Severity.WARNING]


@dataclass(frozen=True)
class LintReport:
    files: tuple[PolicyLint, ...]

    @property
    def errors(self) -> int:
        return sum(len(f.errors) for f in self.files)

    @property
    def warnings(self) -> int:
        return sum(len(f.warnings) for f in self.files)

    def lines(self) -> list[str]:
        out: list[str] = []
        for f in self.files:
            out.extend(str(p) for p in f.problems)
            if f.document is not None:
                out.append(f"{f.path}: about {f.document.tokens} tokens")
        out.append(
            f"{_plural(len(self.files), 'file')}: {_plural(self.errors, 'error')}, {_plural(self.warnings, 'warning')}"
        )
        return out


def _plural(n: int, word: str) -> str:
    return f"{n} {word}" if n == 1 else f"{n} {word}s"


def lint_policy_files(paths: Sequence[Path], check_cases: bool = True) -> LintReport:
    results = [lint_policy_file(path, check_cases) for path in paths]
    _check_shared_names(results)
    return LintReport(tuple(results))


def lint_policy_file(path: Path, check_cases: bool = True) -> PolicyLint:
    source = str(path)
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        reason = "no such file" if isinstance(exc, FileNotFoundError) else str(exc)
        return PolicyLint(path, None, (Problem(Severity.ERROR, source, 0, f"cannot read the policy: {reason}"),))
    doc = parse_policy(text, source=source, expected_name=path.stem)
    # parse_policy reports by check, not by position; a reader wants the file top to bottom.
    # An example citing a rule twice (category and rule_ids) is reported once.
    problems = sorted(dict.fromkeys(doc.problems), key=lambda p: p.line)
    if check_cases:
        problems.extend(_case_file_problems(cases_path_for(path), doc))
    return PolicyLint(path, doc, tuple(problems))


def _case_file_problems(path: Path, doc: PolicyDocument) -> list[Problem]:
    source = str(path)
    if not path.exists():
        return [Problem(Severity.WARNING, source, 0, "no labelled cases: `modbot policy test` needs this file")]
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as exc:
        return [Problem(Severity.ERROR, source, 0, f"cannot read the cases: {exc}")]
    problems = [Problem(Severity.ERROR, source, line, message) for line, message in case_problems(lines)]
    rules = {r.id: r for r in doc.rules}
    violations = safe = 0
    for lineno, raw in enumerate(lines, start=1):
        case = parse_case_line(raw) if raw.strip() else None
        if case is None:
            continue
        violations += case.violation
        safe += 1 - case.violation
        for rule_id in case.rule_ids:
            rule = rules.get(rule_id)
            if rule is None:
                problems.append(
                    Problem(
                        Severity.ERROR,
                        source,
                        lineno,
                        f"case {case.id} cites rule id {rule_id}, which {doc.source} does not define",
                    )
                )
            elif case.violation and not rule.violates:
                problems.append(
                    Problem(
                        Severity.ERROR,
                        source,
                        lineno,
                        f"case {case.id} is a violation but cites the SAFE rule {rule_id}",
                    )
                )
    count = violations + safe
    if count < MIN_CASES:
        problems.append(
            Problem(Severity.WARNING, source, 0, f"only {count} labelled cases; write at least {MIN_CASES}")
        )
    if count and not (violations and safe):
        kind = "no violations" if not violations else "no non-violations"
        problems.append(Problem(Severity.WARNING, source, 0, f"{kind} among the cases: add close calls of both kinds"))
    problems.sort(key=lambda p: p.line)
    return problems


def _check_shared_names(results: list[PolicyLint]) -> None:
    first: dict[str, Path] = {}
    for i, result in enumerate(results):
        doc = result.document
        if doc is None or not doc.name:
            continue
        if doc.name in first and first[doc.name] != result.path:
            clash = Problem(
                Severity.ERROR,
                str(result.path),
                _name_line(result.path),
                f"name {doc.name!r} is already used by {first[doc.name]}: policy names must be unique",
            )
            results[i] = PolicyLint(result.path, doc, (*result.problems, clash))
        first.setdefault(doc.name, result.path)


def _name_line(path: Path) -> int:
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError):
        return 0
    return next((i for i, line in enumerate(lines, start=1) if line.startswith("name:")), 1)
