"""The toolkit without its optional native CPU path: in subprocesses where importing
autorec_jax.native fails (as if the folder were absent), the model and the train step
work, `auto` and the optimizer fall back with the reason given, and
`model.input_path=sparse` is a one-line config error. (`make test-no-native` also runs
the suite on a copy of the package without the folder.)"""

import os
import subprocess
import sys

from tests import conftest, synthetic

# Makes every import of autorec_jax.native fail as for an absent package.
_BLOCK_NATIVE = r"""
import importlib.abc, sys
class _NoNative(importlib.abc.MetaPathFinder):
  def find_spec(self, name, path=None, target=None):
    if name == "autorec_jax.native" or name.startswith("autorec_jax.native."):
      raise ModuleNotFoundError(f"No module named {name!r}", name=name)
    return None
sys.meta_path.insert(0, _NoNative())
"""

_UNIT = r"""
import jax, jax.numpy as jnp, numpy as np, optax, pytest
from autorec_jax.config import checks
from autorec_jax.config.schema import base_config
from autorec_jax.models import sparse
from autorec_jax.models.autoencoder import AutoEncoder
from autorec_jax.training import fast_path, step

assert not fast_path.installed() and sparse.registered() is None
assert fast_path.choose_input_path("auto", num_devices=1, density=0.01) == (
    "dense", "auto: native CPU path not installed")
assert fast_path.choose_input_path("dense", num_devices=1) == ("dense", "asked for")
with pytest.raises(checks.ConfigError, match="not installed") as e:
  fast_path.choose_input_path("sparse", num_devices=1, density=0.01)
assert "\n" not in str(e.value)
cfg = base_config().optim
cfg.name, cfg.momentum = "sgd", 0.9
model = AutoEncoder(hidden=(8, 4), dropout=0.2)
assert fast_path.choose_update(cfg, model, num_devices=1) is None
assert fast_path.tune_malloc() is False
assert fast_path.sparse_ops_available() == (False, "native CPU path not installed")

tx = optax.sgd(0.05, momentum=0.9)
state = step.init_state(model, tx, 20, jax.random.key(0))
rng = np.random.default_rng(0)
mask = (rng.random((6, 20)) < 0.3).astype(np.float32)
batch = {"x": jnp.asarray(mask * rng.integers(1, 6, (6, 20))), "mask": jnp.asarray(mask),
         "row_mask": jnp.ones(6, jnp.float32)}
train_step = jax.jit(step.make_train_step(model, tx, refeed_steps=1))
for i in range(3):
  state, metrics = train_step(state, batch, jax.random.key(i))
assert all(np.isfinite(float(v)) for v in metrics.values()) and int(state.step) == 3
with pytest.raises(sparse.SparseOpsUnavailable):
  model.apply({"params": state.params}, sparse.SparseRows.from_dense(batch["x"]),
              train=False)
assert not [m for m in sys.modules if m.startswith("autorec_jax.native")]
print("ok")
"""


def _run(code: str, *args: str) -> subprocess.CompletedProcess:
  env = {**os.environ, "JAX_NUM_CPU_DEVICES": "1", "JAX_PLATFORMS": "cpu"}
  return subprocess.run([sys.executable, "-c", _BLOCK_NATIVE + code, *args],
                        cwd=conftest.REPO, env=env, capture_output=True, text=True,
                        timeout=300)


def test_the_model_and_the_train_step_work_without_the_native_path():
  out = _run(_UNIT)
  assert out.returncode == 0 and out.stdout.strip() == "ok", out.stderr[-3000:]


_MAIN = r"""
import runpy
sys.argv = ["autorec_jax.main", *sys.argv[1:]]
runpy.run_module("autorec_jax.main", run_name="__main__")
"""


def test_training_falls_back_to_the_dense_path_and_optax(tmp_path):
  data = synthetic.write_ratings_csv(tmp_path / "r.csv", num_users=80, num_items=40,
                                     density=0.08)
  common = ["--config=configs/movielens_1m.py:tiny", "--config.data.name=csv",
            f"--config.data.path={data}", "--config.train.num_epochs=1",
            "--config.optim.name=sgd", "--config.optim.momentum=0.9",
            "--config.optim.weight_decay=0.0", "--verbosity=0"]  # INFO: the choices
  out = _run(_MAIN, *common, f"--workdir={tmp_path / 'auto'}")
  assert out.returncode == 0, out.stderr[-3000:]
  assert "input path: dense (auto: native CPU path not installed)" in out.stderr
  assert "optimizer update: optax (native CPU path not installed)" in out.stderr
  assert (tmp_path / "auto" / "results.json").exists()
  out = _run(_MAIN, *common, f"--workdir={tmp_path / 'sparse'}",
             "--config.model.input_path=sparse")
  assert out.returncode == 1
  errors = [l for l in out.stderr.splitlines() if l.startswith("error:")]
  assert errors == ["error: model.input_path=sparse needs the native CPU path "
                    "(autorec_jax.native), which is not installed; use auto or dense"]
