"""`modbot policy lint|test`, `modbot eval`, `modbot report` (issue 4)."""

from __future__ import annotations

from adapters.console._groups import policy_app

__all__ = ["policy_app"]
