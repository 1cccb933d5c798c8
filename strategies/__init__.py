"""Models and the registry of continual-learning strategies (ours and Avalanche baselines)."""
