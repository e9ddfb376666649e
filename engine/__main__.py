"""`python -m engine ...`: see `python -m engine --help`."""

from engine.cli import main

raise SystemExit(main())
