r"""Netflix Prize, time split '3m': DeepRec's n,128,256,256,dp(0.65),256,128,n (paper test RMSE 0.9373).

  python -m autorec_jax.data.netflix --input=training_set --output=data/netflix
  python -m autorec_jax.main --config=configs/netflix_3m.py --workdir=runs/netflix_3m \
      --config.data.path=data/netflix

Settings of the paper's section 3: SELU in every layer, dropout on the code, SGD with
momentum 0.9, batch 128, learning rate 0.005 with one dense re-feeding step, 100 epochs
(halved at epochs 24, 36, 48, 66 and 72 as DeepRecommender's MultiStepLR), the best
checkpoint by the split's validation half, then the test half. `:tiny` shrinks the
layers 32x for a seconds-long CPU run on a small synthetic tree.
"""

from autorec_jax.deeprec_config import netflix_config


def get_config(arg=None):
  return netflix_config("3m", (128, 256, 256), 0.65, arg)
