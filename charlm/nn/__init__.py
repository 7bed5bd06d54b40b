"""Torch's side of a model: CharLSTM, the device, the torch engine for GPUs; imports torch, the base, text, modelfile and engine."""
