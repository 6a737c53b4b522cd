"""Allow ``python -m srcohort``."""

from srcohort.cli import main

raise SystemExit(main())
