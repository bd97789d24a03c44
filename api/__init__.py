"""Counterfact's HTTP layer: the app factory, controllers, services and repositories."""
