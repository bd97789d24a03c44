"""Counterfact's numerical core: pure numpy/scipy, no HTTP and no database.

Every module implements one method and names the formula or paper it follows.
"""
