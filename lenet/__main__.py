"""`python -m lenet ...`; see lenet/cli/."""
import sys

from lenet.cli import main

sys.exit(main())
