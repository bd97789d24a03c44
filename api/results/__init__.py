"""Experiment results: lift per channel for holdout tests, synthetic-control family for geo tests."""
