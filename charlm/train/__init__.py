"""Training: the Trainer and its parts, and runs in threads (jobs, which load torch only when a run starts); imports all of charlm but cli."""
