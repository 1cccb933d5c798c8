"""Avalanche plugins: basic-model distillation, predictive-sorting replay, FER metrics, speed."""
