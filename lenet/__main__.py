"""`python -m lenet ...`; see lenet/cli.py."""
import sys

from lenet.cli import main

sys.exit(main())
