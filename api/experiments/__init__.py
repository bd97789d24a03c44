"""The experiments resource: holdout and geo tests and their life cycle."""
