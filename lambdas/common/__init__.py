"""Small shared modules used by the database Lambdas: TLS, connections, SCRAM, secret shapes, secret store."""
