"""Periodic check that AWSCURRENT logs in for both application roles; repairs half-finished states."""
