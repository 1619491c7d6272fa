"""Triage: rules before the model, a cheap screen before per-policy judgement, and load shedding.

Import from the modules themselves; this package imports nothing on purpose, so that
`bot.domain` may one day import `bot.triage.config` (a server's triage setting and rule
set) without an import cycle.

- `config`: the per-server `TriageMode` and versioned `RuleSet` (no `bot.*` imports).
- `lists`: the repository's lists (scam domains, invite links, word lists).
- `rules`: checking a message against a compiled rule set; hits as verdicts.
- `flood`: the bounded, expiring duplicate-flood detector.
- `screening`: the screening template, the context-fit check and the screen's request.
- `screen_answer`: the screen's answer schema, parsing, and `ScreenVerdict`.
- `screener`: one screen call with one retry, through the `ScreenModel` port.
- `capacity`: seconds per call per effort, demand, and the backlog's drain time.
- `shedding`: the shedding state machine and what shedding does to each kind of work.
- `recall`: the screen's recall and the calls it saves, for `modbot eval --triage screen`.
"""
