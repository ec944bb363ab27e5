"""The compliance packs the app is checked against and what an acknowledgment must carry."""

from __future__ import annotations

AWS_SOLUTIONS = "AwsSolutions"
HIPAA_SECURITY = "HIPAA.Security"
NIST_800_53_R5 = "NIST.800.53.R5"
PCI_DSS_321 = "PCI.DSS.321"
# The rule-id prefixes of the regulatory packs (a rule id is "<pack>-<rule>", e.g. "HIPAA.Security-LambdaDLQ").
REGULATORY_PACKS = (HIPAA_SECURITY, NIST_800_53_R5, PCI_DSS_321)
# Every pack the app runs; each name is both the plugin's name in the validation report and its rule-id prefix.
NAG_PACKS = (AWS_SOLUTIONS, *REGULATORY_PACKS)

MINIMUM_REASON_LENGTH = 40


def reason_problem(reason: str) -> str | None:
    """Why `reason` cannot justify an exemption (too short to say why and what compensates), or None."""
    if len(reason.strip()) < MINIMUM_REASON_LENGTH:
        return (
            "the reason must say why the rule does not fit and what compensates "
            f"(at least {MINIMUM_REASON_LENGTH} characters)"
        )
    return None
