"""Hyperparameter search: budgets, search spaces by trainer, the Optuna study and its
report (`python -m autorec_jax.tune`, docs/tuning.md)."""
