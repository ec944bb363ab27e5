"""Typed, validated configuration of each deployment environment; plain Python, no aws_cdk import.

- `config.validation`: the error type, `require` and the RDS window arithmetic;
- `config.aws_limits`: tables of what AWS accepts;
- `config.schema`: the frozen dataclasses, one per section;
- `config.parameter_group`: the database's server parameters (RDS parameter group);
- `config.environments`: the staging and production instances.
"""
