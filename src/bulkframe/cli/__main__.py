"""``python -m bulkframe.cli``."""

from bulkframe.cli import main

raise SystemExit(main())
