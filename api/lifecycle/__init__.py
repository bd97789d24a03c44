"""Deleting an experiment or a geo dataset with every row that belongs to it (unit ids are personal data)."""
