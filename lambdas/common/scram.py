"""Client-side SCRAM-SHA-256 verifiers (RFC 5802 / RFC 7677), in the format PostgreSQL stores in pg_authid.

Sending ``ALTER ROLE ... PASSWORD '<verifier>'`` means the plaintext never reaches the server, so it cannot
end up in the statement log (``log_statement=ddl``) that RDS exports to CloudWatch.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets

ITERATIONS = 4096
SALT_BYTES = 16
PREFIX = "SCRAM-SHA-256"


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def scram_sha256_verifier(password: str, *, iterations: int = ITERATIONS, salt: bytes | None = None) -> str:
    """``SCRAM-SHA-256$<iterations>:<salt>$<StoredKey>:<ServerKey>`` for ``password``.

    PostgreSQL applies SASLprep to the password, which is the identity for ASCII input; non-ASCII passwords
    are refused here rather than risk a verifier the server would never match.
    """
    if not password or not password.isascii():
        raise ValueError("password must be a non-empty ASCII string")
    if iterations < 1:
        raise ValueError("iterations must be positive")
    salt = secrets.token_bytes(SALT_BYTES) if salt is None else salt
    salted = hashlib.pbkdf2_hmac("sha256", password.encode("ascii"), salt, iterations)
    client_key = hmac.new(salted, b"Client Key", hashlib.sha256).digest()
    stored_key = hashlib.sha256(client_key).digest()
    server_key = hmac.new(salted, b"Server Key", hashlib.sha256).digest()
    return f"{PREFIX}${iterations}:{_b64(salt)}${_b64(stored_key)}:{_b64(server_key)}"
