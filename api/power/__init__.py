"""Stateless power, sample-size and MDE calculations for holdout tests."""
