"""What Learn computes (neurons, baselines, copying, guessing, anatomy, text statistics); imports the base, text, modelfile and engine, no torch."""
