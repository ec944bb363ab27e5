"""Reusable test harnesses (local PostgreSQL with TLS, ...)."""
