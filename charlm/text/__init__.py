"""Text: bytes to checked text, Vocab and Corpus, the memory-mapped cache, built-in corpora. Imports the base and numpy; no torch."""
