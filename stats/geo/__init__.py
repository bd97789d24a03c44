"""Geo-lift statistics: synthetic controls, TBR, trimmed match, their designs, power, backtests and monitoring."""
