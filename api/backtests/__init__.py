"""Backtests: a geo result's or design's method on placebo windows of its own history (no routes of their own)."""
