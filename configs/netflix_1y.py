r"""Netflix Prize, time split '1y': DeepRec's n,256,256,512,dp(0.8),256,256,n (paper test RMSE 0.9225).

  python -m autorec_jax.data.netflix --input=training_set --output=data/netflix
  python -m autorec_jax.main --config=configs/netflix_1y.py --workdir=runs/netflix_1y \
      --config.data.path=data/netflix

The settings (section 3 of the paper) are in autorec_jax/config/deeprec.py.
"""

from autorec_jax.config.deeprec import netflix_config


def get_config(arg=None):
  return netflix_config("1y", (256, 256, 512), 0.8, arg)
