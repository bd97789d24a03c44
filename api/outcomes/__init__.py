"""Unit-level outcomes of holdout experiments and per-channel spend."""
