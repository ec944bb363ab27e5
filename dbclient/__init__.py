"""Client-side helpers for services that connect to the RevenuePilot database."""
