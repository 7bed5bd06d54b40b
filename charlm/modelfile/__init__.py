"""Model files: tables, the checked reader and the Checkpoint they hold; imports the base, text and numpy, no torch."""
