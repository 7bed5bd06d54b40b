"""Entry point for `python -m charlm`."""

import sys

from .cli import main

sys.exit(main())
