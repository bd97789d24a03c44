"""The audit trail: who did what to an experiment (or a geo dataset), and when."""
