"""Silence jsii's Node.js version banners (this fleet runs Node 20, past jsii's end of support).

jsii only honours the end-of-life silencer when it lists the running major version, so the value
names the majors we accept rather than being a boolean.
"""

from __future__ import annotations

import os
from collections.abc import Mapping

ACCEPTED_NODE_MAJORS = "20,22,24"
QUIET_JSII_ENVIRONMENT: Mapping[str, str] = {
    "JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION": ACCEPTED_NODE_MAJORS,
    "JSII_SILENCE_WARNING_DEPRECATED_NODE_VERSION": ACCEPTED_NODE_MAJORS,
    "JSII_SILENCE_WARNING_UNTESTED_NODE_VERSION": ACCEPTED_NODE_MAJORS,
}


def quiet_jsii_environment(base: Mapping[str, str] | None = None) -> dict[str, str]:
    """`base` (default: this process's environment) with the jsii banners silenced."""
    return {**(os.environ if base is None else base), **QUIET_JSII_ENVIRONMENT}
