"""The torch side: CharLSTM, the device, the torch engine for GPUs, writing model files. Imports torch."""
