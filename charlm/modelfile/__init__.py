"""Model files: tables, the checked reader and the Checkpoint they hold. Imports the base, text and numpy; no torch."""
