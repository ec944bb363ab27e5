"""The migration task image: the backend image plus the runner (`migration.runner`)."""
