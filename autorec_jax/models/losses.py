"""Losses over observed entries only, returning (sum, count) so callers can reduce
exactly across batches, devices and processes (see STYLE.md, Evaluation)."""

from __future__ import annotations

import jax
import jax.numpy as jnp


def _check_shapes(*arrays: jax.Array) -> None:
  shapes = {a.shape for a in arrays}
  if len(shapes) != 1:
    raise ValueError(f"losses need equal shapes, got {[a.shape for a in arrays]}")


def masked_sse(pred: jax.Array, target: jax.Array,
               mask: jax.Array) -> tuple[jax.Array, jax.Array]:
  """Sum of squared errors where mask is 1, and the number of such entries.

  Entries with mask 0 (unknown ratings, padding rows) contribute neither error nor
  gradient. MMSE of DeepRec's eq. (1) is sse / max(count, 1).
  """
  _check_shapes(pred, target, mask)
  err = jnp.where(mask > 0, pred - target, 0.0)
  return jnp.sum(mask * err * err), jnp.sum(mask)


def masked_sae(pred: jax.Array, target: jax.Array,
               mask: jax.Array) -> tuple[jax.Array, jax.Array]:
  """Sum of absolute errors where mask is 1, and the count (for MAE)."""
  _check_shapes(pred, target, mask)
  err = jnp.where(mask > 0, pred - target, 0.0)
  return jnp.sum(mask * jnp.abs(err)), jnp.sum(mask)


def masked_mse(pred: jax.Array, target: jax.Array, mask: jax.Array) -> jax.Array:
  """Masked mean squared error (DeepRec eq. 1); 0 when nothing is observed."""
  sse, count = masked_sse(pred, target, mask)
  return sse / jnp.maximum(count, 1.0)


def denoising_sse(pred: jax.Array, target: jax.Array, known: jax.Array,
                  corrupted: jax.Array, *, alpha: float,
                  beta: float) -> tuple[jax.Array, jax.Array]:
  """Strub & Mary's sparse alpha/beta loss as (weighted sum, count of known entries).

  alpha weighs squared errors on corrupted known entries (denoising: predicting what
  was hidden), beta those on uncorrupted known entries (reconstruction); unknown
  entries carry nothing. alpha = beta = 1 is masked_sse.
  """
  _check_shapes(pred, target, known, corrupted)
  err = jnp.where(known > 0, pred - target, 0.0)
  weight = known * (alpha * corrupted + beta * (1.0 - corrupted))
  return jnp.sum(weight * err * err), jnp.sum(known)
