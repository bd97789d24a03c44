"""Aggregated observations of holdout experiments (sufficient statistics per channel and arm)."""
