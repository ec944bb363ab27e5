"""Secrets Manager rotation function for the two-user application database secret."""
