r"""Netflix Prize, time split 'full': DeepRec's n,512,512,1024,dp(0.8),512,512,n (paper test RMSE 0.9099).

  python -m autorec_jax.data.netflix --input=training_set --output=data/netflix
  python -m autorec_jax.main --config=configs/netflix_full.py --workdir=runs/netflix_full \
      --config.data.path=data/netflix

The settings (section 3 of the paper) are in autorec_jax/config/deeprec.py.
"""

from autorec_jax.config.deeprec import netflix_config


def get_config(arg=None):
  return netflix_config("full", (512, 512, 1024), 0.8, arg)
