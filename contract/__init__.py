"""What the CDK code, the Lambdas, the migration runner, the client helper and ops/ must agree on.

Plain Python, standard library only: it is bundled into every Lambda asset and copied into the
migration image, so each name, shape and rule below is written once.

- `contract.secret`: the application and master secret JSON, its field names and its one parser;
- `contract.names`: database role names, Lambda environment variable names, the state machine name,
  the characters generated passwords exclude;
- `contract.auth`: the SQLSTATEs that mean "wrong password" and the one AWSPENDING fallback;
- `contract.compliance`: the cdk-nag pack names and the acknowledgment reason rule.
"""
