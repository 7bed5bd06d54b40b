"""charlm: train a character-level LSTM language model on any text and make it write."""

__version__ = "0.1.0"
