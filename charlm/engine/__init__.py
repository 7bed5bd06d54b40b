"""Writing and reading with a model in numpy (the LSTM, sampling, beam search, Step sessions, scores); imports the base, text, modelfile, no torch."""
