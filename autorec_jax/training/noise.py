"""Input corruption for denoising autoencoders (Strub & Mary 2015, section 2.1).

Only known entries are corrupted. Each known entry draws one uniform number and falls
in at most one of three disjoint bands, so mixtures (e.g. 75% masking + 25%
salt-and-pepper of a corruption ratio) are exact:

- masking: forced to 0 (the paper's main corruption; 0 is "unknown" at the input);
- salt-and-pepper: forced to the low or the high end of the input scale, 50/50;
- Gaussian: N(0, std^2) added.

Returns the corrupted input and the 0/1 set of corrupted entries, which the alpha/beta
loss weighs separately.
"""

from __future__ import annotations

import dataclasses

import jax
import jax.numpy as jnp


@dataclasses.dataclass(frozen=True)
class NoiseConfig:
  """Fractions of the known entries to corrupt, and the noise parameters (plain floats)."""

  masking: float = 0.0
  salt_pepper: float = 0.0
  gaussian: float = 0.0
  gaussian_std: float = 0.0
  low: float = -1.0   # salt value
  high: float = 1.0   # pepper value

  @property
  def active(self) -> bool:
    return self.masking + self.salt_pepper + self.gaussian > 0.0

  def __post_init__(self):
    for name in ("masking", "salt_pepper", "gaussian"):
      value = getattr(self, name)
      if not 0.0 <= value <= 1.0:
        raise ValueError(f"noise.{name}={value} must be in [0, 1]")
    if self.masking + self.salt_pepper + self.gaussian > 1.0 + 1e-9:
      raise ValueError("noise.masking + noise.salt_pepper + noise.gaussian must be <= 1")


def corrupt(x_BxI: jax.Array, known_BxI: jax.Array, cfg: NoiseConfig,
            key: jax.Array) -> tuple[jax.Array, jax.Array]:
  """(corrupted x, corrupted-entry indicator), both [B, I]; unknown entries untouched."""
  band_key, coin_key, gauss_key = jax.random.split(key, 3)
  u_BxI = jax.random.uniform(band_key, x_BxI.shape)
  known = known_BxI > 0
  m_end = cfg.masking
  s_end = m_end + cfg.salt_pepper
  g_end = s_end + cfg.gaussian
  masked = known & (u_BxI < m_end)
  salted = known & (u_BxI >= m_end) & (u_BxI < s_end)
  noised = known & (u_BxI >= s_end) & (u_BxI < g_end)
  coin = jax.random.bernoulli(coin_key, 0.5, x_BxI.shape)
  x = jnp.where(masked, 0.0, x_BxI)
  x = jnp.where(salted, jnp.where(coin, cfg.high, cfg.low), x)
  if cfg.gaussian > 0.0:
    x = jnp.where(noised, x + cfg.gaussian_std * jax.random.normal(gauss_key, x.shape), x)
  corrupted = (masked | salted | noised).astype(x_BxI.dtype)
  return x.astype(x_BxI.dtype), corrupted
