"""`modbot review`, `modbot appeal`, `modbot settings`, `modbot jobs` (issue 3)."""

from __future__ import annotations
