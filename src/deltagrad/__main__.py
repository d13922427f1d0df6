"""``python -m deltagrad``: the ``deltagrad`` command."""

import sys

from deltagrad.cli.main import main

sys.exit(main())
