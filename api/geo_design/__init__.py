"""Geo-lift test design: power for given treatment markets and market selection."""
