"""`modbot policy set|show|list|history|diff|rollback|enable|disable|mode|preview|apply` (issue 3)."""

from __future__ import annotations

from adapters.console._groups import policy_app

__all__ = ["policy_app"]
