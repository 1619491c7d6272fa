"""modbot's core: knows moderation, and nothing of Discord or Slack."""
