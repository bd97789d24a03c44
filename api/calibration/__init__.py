"""Lift results as the calibration input of the open marketing-mix models (Robyn, Meridian, PyMC-Marketing)."""
