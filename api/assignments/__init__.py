"""Holdout assignments: which arm each unit is in, per channel, decided once and stored."""
