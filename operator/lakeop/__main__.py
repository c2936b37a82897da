"""Allow ``python -m lakeop``."""

from lakeop.cli import main

raise SystemExit(main())
