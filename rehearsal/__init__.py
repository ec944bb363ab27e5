"""`make rehearse`: the sample Alembic project and the child-process entry point of the Lambda handlers."""
