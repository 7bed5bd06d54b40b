"""What Learn computes: neurons, baselines, copying, guessing, anatomy, text statistics. Imports text, modelfile and engine; no torch."""
