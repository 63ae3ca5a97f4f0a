"""Validation from entry lists (the sparse path's evaluator) equals the dense one."""

import jax
import numpy as np
import pytest

from autorec_jax.data.batching import CSRBatcher
from autorec_jax.data.preprocess import Preprocessor
from autorec_jax.data.types import Ratings
from autorec_jax.evaluation import rmse as evaluate
from autorec_jax.models.autoencoder import AutoEncoder
from autorec_jax.native import sparse_input
from autorec_jax.runtime import parallel


def _ratings(rng, num_users=40, num_items=30, density=0.3):
  observed = rng.random((num_users, num_items)) < density
  user, item = np.nonzero(observed)
  return Ratings(user=user.astype(np.int32), item=item.astype(np.int32),
                 rating=rng.integers(1, 6, len(user)).astype(np.float32), timestamp=None,
                 user_ids=np.arange(num_users), item_ids=np.arange(num_items))


@pytest.mark.parametrize("orientation,scale,bias", [("user", False, "none"),
                                                    ("item", True, "row")])
def test_entry_lists_give_the_dense_metrics(orientation, scale, bias):
  ok, why = sparse_input.available()
  if not ok:
    pytest.skip(why)
  rng = np.random.default_rng(0)
  every = _ratings(rng)
  held = rng.random(every.num_ratings) < 0.2
  train, target = every.subset(~held), every.subset(held)
  pre = Preprocessor.fit(train, orientation=orientation, scale=scale,
                         rating_scale=(1.0, 5.0), bias=bias)
  csr = pre.transform(train).to_csr(orientation)
  model = AutoEncoder(hidden=(8,), activation="selu")
  params = model.init(jax.random.key(0), np.zeros((1, csr.shape[1]), np.float32),
                      train=False)["params"]
  mesh = parallel.make_mesh()
  outs = []
  for entries in (False, True):
    make = evaluate.make_entries_eval_step if entries else evaluate.make_eval_step
    kwargs = {"num_inputs": csr.shape[1]} if entries else {}
    step = jax.jit(make(model, clip_min=1.0, clip_max=5.0, pre=pre, **kwargs))
    ev = evaluate.Evaluator(train=train, target=target, orientation=orientation,
                            batcher=CSRBatcher(csr, 8, seed=0, prefetch=0), eval_step=step,
                            mesh=mesh, rating_scale=(1.0, 5.0), row_bias=pre.row_bias,
                            entries=entries)
    outs.append(ev(params))
    assert ev(params) == outs[-1]  # the kept batches give the same again
  dense, listed = outs
  assert listed["count"] == dense["count"] and listed["cold_count"] == dense["cold_count"]
  assert listed["rmse"] == pytest.approx(dense["rmse"], rel=1e-5)
  assert listed["mae"] == pytest.approx(dense["mae"], rel=1e-5)
