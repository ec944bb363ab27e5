"""Periodic credentials check of the application secret (PLACEHOLDER: the creds-logic branch provides it)."""
