"""Workspaces: the teams a service shared by several keeps apart (issue 22)."""
