"""`python -m clearn` runs the command line."""

from clearn.cli import main

raise SystemExit(main())
