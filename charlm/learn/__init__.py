"""What Learn computes (neurons, baselines, influence, cell, charmap and more); imports the base, text, modelfile and engine, no torch."""
