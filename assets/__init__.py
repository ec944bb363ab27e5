"""What the stacks stage before they hand it to the constructs: Lambda code, the migration image's
build context and the RDS CA bundle both contain.

Everything is staged without Docker and fingerprinted from its inputs with one helper
(`assets.staging`), so unchanged inputs keep their asset hashes and a stable `cdk diff`.
Constructs never import this package: stacks call it and pass `lambda_.Code` objects or paths on.
"""
