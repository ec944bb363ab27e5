"""Operator commands: `python -m ops migrate|rollback --env <env> --revision <rev> [--dry-run]`."""
