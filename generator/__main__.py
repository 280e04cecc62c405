"""``python -m generator``: the ``termlab`` command line."""

import sys

from generator.adapters.cli import main

sys.exit(main())
