"""Entry point for `python -m charlm`."""

import sys

from charlm.cli.main import main

sys.exit(main())
