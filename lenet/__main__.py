"""`python -m lenet ...`; see lenet/cli.py."""
import sys

from .cli import main

sys.exit(main())
