"""API keys: bearer authentication with scopes for every ``/v1`` operation."""
