"""Lambda function code for the RevenuePilot database stack (bundled with the package at the asset root)."""
