"""Benchmarks, run on demand from the repository root: ``.venv/bin/python bench/<name>.py``."""
