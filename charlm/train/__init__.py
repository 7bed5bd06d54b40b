"""Training: the Trainer and its parts, and runs in threads (jobs). Imports torch, except jobs and events at import time."""
