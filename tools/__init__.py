"""Build-time helpers for the CDK app (not bundled into Lambdas)."""
