"""The backend image reference the migration task is built from, shared by the Migration stack and `ops`.

The task definition's container carries the configured reference as the Docker label
`BACKEND_IMAGE_LABEL`; `python -m ops migrate` compares it with the configuration before it starts
the runbook, so migrations never run from a task definition built on another backend release.
"""

from __future__ import annotations

BACKEND_IMAGE_LABEL = "revenuepilot.backend-image"


def backend_image_uri(reference: str, *, account: str, region: str) -> str:
    """`reference` (`<repository>:<tag>` or `<repository>@<digest>`) with its registry.

    A reference whose first path part is no host name is an ECR repository of the environment's
    own account and region.
    """
    if "." in reference.split("/", 1)[0]:
        return reference
    return f"{account}.dkr.ecr.{region}.amazonaws.com/{reference}"
