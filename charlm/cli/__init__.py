"""The command line (python -m charlm). Nothing imports it; the reading commands load torch only when they need it."""
