r"""Netflix Prize, time split '3m': DeepRec's n,128,256,256,dp(0.65),256,128,n (paper test RMSE 0.9373).

  python -m autorec_jax.data.netflix --input=training_set --output=data/netflix
  python -m autorec_jax.main --config=configs/netflix_3m.py --workdir=runs/netflix_3m \
      --config.data.path=data/netflix

The settings (section 3 of the paper) are in autorec_jax/config/deeprec.py.
"""

from autorec_jax.config.deeprec import netflix_config


def get_config(arg=None):
  return netflix_config("3m", (128, 256, 256), 0.65, arg)
