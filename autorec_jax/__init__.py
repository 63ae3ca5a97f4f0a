"""autorec_jax: autoencoders for collaborative filtering on JAX/Flax.

`autorec_jax.load(workdir)` returns a trained run's model (api.Model: predict,
recommend, fold_in, export). It is imported on first use, so `import autorec_jax`
stays light (no JAX).
"""


def __getattr__(name):
  if name == "load":
    from autorec_jax.serving.api import load  # pylint: disable=import-outside-toplevel
    return load
  raise AttributeError(f"module 'autorec_jax' has no attribute {name!r}")
