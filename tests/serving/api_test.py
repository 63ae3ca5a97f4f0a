import json
import pathlib
import subprocess
import sys

import jax.numpy as jnp
import numpy as np
import pytest

import autorec_jax
from autorec_jax.serving import api
from tests import conftest, trained_runs


@pytest.fixture(scope="module", params=["user", "item"])
def model(request, tmp_path_factory):
  return api.load(str(trained_runs.tiny_run(tmp_path_factory, request.param)))


def _all_pairs(m):
  u, i = np.meshgrid(np.arange(len(m.user_ids)), np.arange(len(m.item_ids)), indexing="ij")
  return u.ravel(), i.ravel()


def _hand_scores(m):
  """users x items: the model's dense output on its train rows, by hand (no api code)."""
  p = m.predictor
  x = p._train_csr.toarray()  # model units, rows of the orientation
  out = np.asarray(p.model.apply({"params": p.params}, jnp.asarray(x), train=False))
  out = p._pre.inverse(out, p._pre.row_bias)
  return out if m.orientation == "user" else out.T


def test_load_is_lazy_and_gives_a_model(model):
  assert autorec_jax.load is api.load
  proc = subprocess.run([sys.executable, "-c", "import sys, autorec_jax; "
                         "assert 'jax' not in sys.modules; print('light')"],
                        cwd=conftest.REPO, capture_output=True, text=True, timeout=60)
  assert proc.stdout.strip() == "light", proc.stderr[-2000:]
  results = json.loads((pathlib.Path(model.workdir) / "results.json").read_text())
  assert model.predictor.epoch == results["best_epoch"]
  assert api.load(model.workdir, "latest").predictor.epoch == 3


def test_predict_takes_original_ids(model):
  test = model.predictor.part("test")
  by_id = model.predict(model.user_ids[test.user], model.item_ids[test.item])
  np.testing.assert_array_equal(by_id, model.predictor.predict(test.user, test.item))
  # Ids given as strings (as from a command line) work for integer id data sets.
  assert model.predict([str(model.user_ids[0])], [str(model.item_ids[0])]).shape == (1,)


def test_unknown_ids_are_clear_errors(model):
  with pytest.raises(ValueError, match=r"unknown user id\(s\) \[7\].*fold_in"):
    model.predict([7], [model.item_ids[0]])
  with pytest.raises(ValueError, match="unknown item"):
    model.predict([model.user_ids[0]], [99999])
  with pytest.raises(ValueError, match="integers"):
    model.predict(["abc"], [model.item_ids[0]])
  with pytest.raises(ValueError, match="one per pair"):
    model.predict(model.user_ids[:2], model.item_ids[:1])


def test_rows_function_on_train_rows_is_the_live_model(model):
  users, items = _all_pairs(model)
  live = model.predictor.predict(users, items).reshape(len(model.user_ids), -1)
  scores = model.scores(np.arange(len(model.user_ids)))
  np.testing.assert_allclose(np.clip(scores, *model.rating_scale), live, atol=1e-5)


def test_scores_are_the_dense_output_by_hand(model):
  hand = _hand_scores(model)
  scores = model.scores(np.arange(len(model.user_ids)))
  warm = model.trained_items
  np.testing.assert_allclose(scores[:, warm], hand[:, warm], atol=1e-5)


def test_recommend_ranks_the_dense_output_skipping_rated_items(model):
  hand = _hand_scores(model)
  train_ui = model.predictor.data.train.to_csr("user")
  all_ui = model.predictor.data.loaded.ratings.to_csr("user")
  for u in range(0, len(model.user_ids), 17):
    uid = model.user_ids[u]
    for exclude, known in (("train", train_ui), ("all", all_ui)):
      recs = model.recommend(uid, k=5, exclude=exclude)
      rated = set(model.item_ids[known[u].indices].tolist())
      assert len(recs) == 5
      assert not rated & {r.item_id for r in recs}
      s = hand[u].copy()
      s[~model.trained_items] = -np.inf
      s[known[u].indices] = -np.inf
      expected = model.item_ids[np.argsort(-s, kind="stable")[:5]]
      assert [r.item_id for r in recs] == expected.tolist()
      assert [r.score for r in recs] == sorted([r.score for r in recs], reverse=True)
      np.testing.assert_allclose([r.prediction for r in recs],
                                 model.predict([uid] * 5, expected), atol=1e-6)


def test_recommend_many_matches_recommend_and_chunks(model):
  users = model.user_ids[:7]
  many = model.recommend_many(users, k=4, max_entries=len(model.item_ids) * 3)
  assert many == [model.recommend(u, k=4) for u in users]
  with pytest.raises(ValueError, match="k must be"):
    model.recommend(users[0], k=0)
  with pytest.raises(ValueError, match="exclude"):
    model.recommend(users[0], exclude="none")


def test_fold_in_of_a_known_users_train_ratings(model):
  train = model.predictor.data.train
  u = 3
  mine = train.user == u
  given = dict(zip(model.item_ids[train.item[mine]], train.rating[mine]))
  folded = model.fold_in(given)
  own = model.scores(np.array([u]))[0]
  warm = model.trained_items
  if model.orientation == "user":
    # Encoding is the model's own computation on the same row: exact.
    encoded = model.fold_in(given, method="encode")
    np.testing.assert_allclose(encoded.scores, own, atol=1e-5)
    known = model.recommend(model.user_ids[u], k=5, exclude="train")
    assert [r.item_id for r in encoded.recommend(5)] == [r.item_id for r in known]
  # A re-fitted user is close to the trained one, not equal.
  assert np.corrcoef(folded.scores[warm], own[warm])[0, 1] > 0.8
  lo, hi = model.rating_scale
  assert np.all((folded.predictions >= lo) & (folded.predictions <= hi))
  recs = folded.recommend(6)
  assert len(recs) == 6 and not {r.item_id for r in recs} & set(model.item_ids[train.item[mine]])
  np.testing.assert_allclose(folded.predict([r.item_id for r in recs]),
                             [r.prediction for r in recs], atol=1e-6)


def test_fold_in_methods_by_orientation(model):
  a = model.item_ids[model.trained_items][0]
  if model.orientation == "user":
    assert not np.array_equal(model.fold_in({a: 5}, method="refine").scores,
                              model.fold_in({a: 5}, method="encode").scores)
    bad = "readout"
  else:
    np.testing.assert_array_equal(model.fold_in({a: 5}).scores,
                                  model.fold_in({a: 5}, method="readout").scores)
    bad = "encode"
  with pytest.raises(ValueError, match=f"not for a {model.orientation}-based model"):
    model.fold_in({a: 5}, method=bad)


def test_fold_in_accepts_pairs_and_rejects_bad_input(model):
  a, b = model.item_ids[model.trained_items][:2]
  assert np.array_equal(model.fold_in([(a, 5), (b, 1)]).scores,
                        model.fold_in({a: 5, b: 1}).scores)
  with pytest.raises(ValueError, match="at least one"):
    model.fold_in({})
  with pytest.raises(ValueError, match="unknown item"):
    model.fold_in({12345: 4})
  with pytest.raises(ValueError, match="more than once"):
    model.fold_in([(a, 4), (a, 5)])
  with pytest.raises(ValueError, match="rating scale"):
    model.fold_in({a: 7})


def test_rows_fn_preprocesses_each_row_and_falls_back():
  import jax
  from autorec_jax.models.autoencoder import AutoEncoder
  module = AutoEncoder(hidden=(3,), activation="tanh")
  params = module.init(jax.random.key(0), jnp.zeros((1, 5)), train=False)["params"]
  trained = np.array([True, True, True, True, False])
  fallback = np.array([3.1, 3.2, 3.3, 3.4, 3.0], np.float32)
  fn = api.make_rows_fn(module, mid=3.0, half=2.0, row_bias=True, trained_N=trained,
                        fallback_N=fallback, clip=(1.0, 5.0))
  ratings = np.array([[5, 0, 1, 0, 0], [0, 0, 0, 0, 4], [0] * 5], np.float32)
  mask = np.array([[1, 0, 1, 0, 0], [0, 0, 0, 0, 1], [0] * 5], np.float32)
  out = np.asarray(fn(params, jnp.asarray(ratings), jnp.asarray(mask)))
  # Row 0: scaled (1, -1), bias 0, so the model sees (1, 0, -1, 0, 0).
  x = np.array([[1.0, 0.0, -1.0, 0.0, 0.0]], np.float32)
  by_hand = np.asarray(module.apply({"params": params}, x, train=False))[0] * 2.0 + 3.0
  np.testing.assert_allclose(out[0, :4], np.clip(by_hand[:4], 1, 5), atol=1e-6)
  assert out[0, 4] == pytest.approx(3.0)  # untrained column: the row's mean
  np.testing.assert_allclose(out[1], fallback)  # only an untrained column: cold row
  np.testing.assert_allclose(out[2], fallback)  # empty row


def test_ids_match_exactly(model):
  u, i = model.user_ids[0], model.item_ids[0]
  base = model.predict([u], [i])
  # The same ids in other clothes: a float equal to the id, a numpy int, digits.
  np.testing.assert_array_equal(model.predict([float(u)], [i]), base)
  np.testing.assert_array_equal(model.predict(np.array([u], np.int32), [str(i)]), base)
  np.testing.assert_array_equal(model.predict(np.array([float(u)]), np.array([i])), base)
  for bad in (u + 0.7, float("nan"), float("inf"), True, False, f" {u}", f"{u}.0", None,
              b"1001", "٢٤"):
    with pytest.raises(ValueError, match=r"user id\(s\) .* are not ids of this data set"):
      model.predict([bad], [i])
    with pytest.raises(ValueError, match=r"item id\(s\) .* are not ids of this data set"):
      model.predict([u], [bad])
  for bad in (np.array([u + 0.7]), np.array([np.nan]), np.array([True])):
    with pytest.raises(ValueError, match="not ids of this data set"):
      model.predict(bad, [i])
  with pytest.raises(ValueError, match=r"user id\(s\) \[1001\.7\]"):  # named as given
    model.recommend(1001.7)
  with pytest.raises(ValueError, match="must be a sequence"):
    model.predict(u, i)


def test_id_errors_list_a_few_ids(model):
  i = model.item_ids[0]
  with pytest.raises(ValueError) as e:
    model.predict(["x"] * 3000, [i] * 3000)
  assert "and 2995 more" in str(e.value) and len(str(e.value)) < 300
  with pytest.raises(ValueError) as e:
    model.predict(list(range(10**6, 10**6 + 3000)), [i] * 3000)
  assert "and 2995 more" in str(e.value) and len(str(e.value)) < 300


def test_k_must_be_a_positive_int(model):
  u = model.user_ids[0]
  folded = model.fold_in({model.item_ids[model.trained_items][0]: 4})
  for bad in (2.5, 0, -1, True, "3", None, np.float64(3.0)):
    with pytest.raises(ValueError, match="k must be a positive integer"):
      model.recommend(u, k=bad)
    with pytest.raises(ValueError, match="k must be a positive integer"):
      model.recommend_many([], k=bad)  # refused before anything is scored
    with pytest.raises(ValueError, match="k must be a positive integer"):
      folded.recommend(bad)
  assert len(model.recommend(u, k=np.int64(3))) == 3
  assert len(folded.recommend(np.int32(2))) == 2


def test_indices_are_checked(model):
  """A negative index would take a row from the end, a float would be truncated."""
  num_users, num_items = len(model.user_ids), len(model.item_ids)
  for bad in ([-1], [num_users], [1.5], [True], np.array([0.0]), [[0]]):
    with pytest.raises(ValueError, match="user ind"):
      model.scores(bad)
  p = model.predictor
  with pytest.raises(ValueError, match=r"user indices \[-1\] are out of range"):
    p.predict([-1], [0])
  with pytest.raises(ValueError, match=rf"item indices \[{num_items}\] are out of range"):
    p.predict([0], [num_items])
  with pytest.raises(ValueError, match="one per pair"):
    p.predict([0, 1], [0])
  with pytest.raises(ValueError, match=r"item indices \[-1\] are out of range"):
    model._fold_in_model().scores(np.array([-1]), np.array([4.0]))
  from autorec_jax.serving import ensemble  # pylint: disable=import-outside-toplevel
  blend = ensemble.Ensemble.average([model])
  with pytest.raises(ValueError, match=r"user indices \[-1\] are out of range"):
    blend.predict_index(np.array([-1]), np.array([0]))
  with pytest.raises(ValueError, match=r"user indices \[-2\] are out of range"):
    blend.scores(np.array([-2]))


def test_load_checks_which_checkpoint(model):
  latest = api.load(model.workdir, "latest").predictor.step
  for bad in (True, float(latest), -1, "-1", "Best", None, " 1",
              str(latest).translate(str.maketrans("0123456789", "٠١٢٣٤٥٦٧٨٩"))):
    with pytest.raises(ValueError, match="which must be 'best', 'latest' or a step number"):
      api.load(model.workdir, bad)
  assert api.load(model.workdir, np.int64(latest)).predictor.step == latest
  with pytest.raises(FileNotFoundError, match=rf"no checkpoint {latest + 1000} under .*; it "
                                              rf"holds step"):
    api.load(model.workdir, latest + 1000)


def test_fold_in_refuses_what_is_not_a_rating(model):
  a, b = model.item_ids[model.trained_items][:2]
  for ratings, pattern in (
      ({a: True}, "must be a number, got True"),
      ({a: "4"}, "must be a number, got '4'"),
      ({a: float("nan")}, r"rating nan of item .* outside the rating scale"),
      ([(a, 4, 1)], r"takes \(item id, rating\) pairs"),
      ([a, b], r"takes \(item id, rating\) pairs"),
      ("501,4", "ratings must be a sequence"),
      ([(a + 0.5, 4)], r"item id\(s\) .* are not ids"),
      ([(a, 4), (float(a), 5)], f"got item {float(a)!r} more than once")):
    with pytest.raises(ValueError, match=pattern):
      model.fold_in(ratings)
  np.testing.assert_array_equal(model.fold_in(np.array([[a, 5.0], [b, 1.0]])).scores,
                                model.fold_in({a: 5, b: 1}).scores)
