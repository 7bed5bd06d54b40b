"""Writing and reading with a model in numpy: the LSTM, sampling, whole texts, beam search, Step sessions, scores. No torch."""
