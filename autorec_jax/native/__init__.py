"""The optional native CPU path: sparse-entry kernels (sparse_input), the fused SGD
update (fused_sgd) and malloc tuning (host_memory).

A plug-in: nothing outside this package imports it except
autorec_jax.training.fast_path, which finds it (or its absence) and picks the input
path and the update. Importing sparse_input registers its kernels as the model's
sparse ops (autorec_jax.models.sparse).
"""
