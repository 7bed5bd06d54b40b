"""charlm: train a character-level LSTM language model on any text and make it write."""

import os

# Generation on the CPU steps the LSTM with numpy one character at a time. Left to itself, numpy's
# OpenBLAS splits each small matrix-vector product over every core and busy-waits between them;
# beside a training job (or another visitor) that made generation 50 times slower on 2 cores. One
# thread costs ~10% on an idle machine. The variable is read when numpy first loads, so it only
# takes effect if charlm is imported first (python -m charlm, the app's entry file); an explicit
# setting wins.
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

__version__ = "0.1.0"
