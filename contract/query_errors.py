"""A failed query described without the server's words: its name, the SQLSTATE and a fixed text.

Used wherever a query over patient data can fail and the failure travels on: the migration runner's
validation (task failure cause, execution history, alert e-mail) and the restore validation function
(AWS Backup's validation message, the evidence log, the alert e-mail). PostgreSQL's message, detail
and hint quote values; none of them is ever passed on.
"""

from __future__ import annotations

import re

from contract.auth import sqlstate_of

# Fixed texts per SQLSTATE class: the server's own message is never passed on. It quotes values
# ('invalid input syntax for type integer: "<a patient's name>"'), and the failure cause travels to
# the execution history, the runbook's log group, AWS Backup's validation message and the alert e-mail.
_SQLSTATE_CLASSES = {
    "08": "connection exception",
    "0A": "feature not supported",
    "21": "cardinality violation",
    "22": "data exception (a value could not be converted or was out of range)",
    "23": "integrity constraint violation",
    "25": "invalid transaction state (the query must not write)",
    "28": "invalid authorization",
    "40": "transaction rollback",
    "42": "syntax error or access rule violation (a missing table or column, or no privilege)",
    "53": "insufficient resources",
    "54": "program limit exceeded",
    "55": "object not in prerequisite state",
    "57": "operator intervention (57014: statement timeout or cancelled)",
    "58": "system error",
    "XX": "internal error",
}
_SQLSTATES = {
    "25006": "read-only transaction: the query must not write",
    "42501": "insufficient privilege",
    "42703": "undefined column",
    "42P01": "undefined table",
    "57014": "statement timeout or cancelled",
}
_SQLSTATE = re.compile(r"^[0-9A-Z]{5}$")


def _well_formed_sqlstate(exc: BaseException) -> str | None:
    code = sqlstate_of(exc)
    return code if code is not None and _SQLSTATE.match(code) else None


def failure_message(name: str, exc: BaseException) -> str:
    """The query's name, the SQLSTATE and a fixed text: no server message, detail, hint or value."""
    code = _well_formed_sqlstate(exc)
    if code is None:
        return f"validation query {name!r} failed: {type(exc).__name__} (no SQLSTATE)"
    meaning = _SQLSTATES.get(code) or _SQLSTATE_CLASSES.get(code[:2], "database error")
    return f"validation query {name!r} failed: SQLSTATE {code}, {meaning}"
