"""Liveness and database reachability."""
