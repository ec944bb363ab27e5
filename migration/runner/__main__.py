import sys

from migration.runner.cli import main

sys.exit(main())
