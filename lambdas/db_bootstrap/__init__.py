"""CloudFormation custom resource that creates the migration/app_user roles and their grants."""
