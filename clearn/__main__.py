"""`python -m clearn` runs the command line."""

from clearn.app.cli import main

raise SystemExit(main())
