"""Data-generating processes and calibration runs that tests and benches both use (never shipped).

Seeded panels shaped like real geo data (``geo_simulation``), the coverage and false-positive runs over them
(``geo_calibration``, ``geo_power_calibration``) and GeoLift's walkthrough panel with its published figures
(``geolift_data``). Nothing here imports ``tests``: bench scripts import it too.
"""
