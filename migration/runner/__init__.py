"""Runs Alembic and the validation queries as the `migration` role, credentials in memory only.

`python -m migration.runner --secret-id ARN [options] {upgrade REV,downgrade REV,current,validate}`.
The modules hold plain functions that take their collaborators (a Secrets Manager client, a
connection factory, a process runner) as arguments; `cli.main()` wires them.
"""
