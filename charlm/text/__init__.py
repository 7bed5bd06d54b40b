"""Text: bytes to checked text, Vocab and Corpus, the memory-mapped cache, built-in corpora; imports the base and numpy, no torch."""
