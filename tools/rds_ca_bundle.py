"""Write the Amazon RDS root CA certificates of one region as a PEM bundle (assets.rds_ca_bundle).

Usage: ``python -m tools.rds_ca_bundle us-east-1 out/rds-ca-bundle.pem``
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from assets.rds_ca_bundle import CaBundleError, write_bundle


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("region")
    parser.add_argument("out_path", type=Path)
    args = parser.parse_args(argv)
    try:
        names = write_bundle(args.region, args.out_path)
    except CaBundleError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    print(f"wrote {len(names)} certificates to {args.out_path}: {', '.join(names)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
