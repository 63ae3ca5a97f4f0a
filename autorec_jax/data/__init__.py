"""Data: readers for the public rating datasets, splits, and the CSR batcher."""
