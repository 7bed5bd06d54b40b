"""The command line (python -m charlm); imports any of charlm, and nothing imports it; reading commands load no torch."""
