"""Device mesh, shardings and host-to-device transfer for data-parallel training.

One 1-D mesh axis "data" over every device of every process: parameters and optimizer
state are replicated, batch rows are split. Each process feeds only its own rows.
"""

from __future__ import annotations

import jax
import numpy as np
from jax.sharding import AxisType, Mesh, NamedSharding, PartitionSpec as P


def make_mesh() -> Mesh:
  """A mesh over all devices with one data-parallel axis."""
  return jax.make_mesh((jax.device_count(),), ("data",), axis_types=(AxisType.Auto,))


def replicated(mesh: Mesh) -> NamedSharding:
  return NamedSharding(mesh, P())


def data_sharded(mesh: Mesh) -> NamedSharding:
  return NamedSharding(mesh, P("data"))


def to_global(batch: dict[str, np.ndarray], sharding: NamedSharding) -> dict[str, jax.Array]:
  """Host-local numpy rows -> global arrays split on the batch axis.

  The transfer may read the host buffer asynchronously after this call returns (seen
  on CPU while earlier steps were still queued: reused batcher buffers corrupted
  training), so JAX gets a private copy and the batcher may reuse its buffers at once.
  """
  private = {k: np.array(v) for k, v in batch.items()}
  if jax.process_count() == 1:  # the local rows are all rows: one batched transfer
    return jax.device_put(private, sharding)  # (~3x less overhead per small batch)
  return {k: jax.make_array_from_process_local_data(sharding, v) for k, v in private.items()}


def check_batch_size(batch_size: int, what: str = "train.batch_size") -> None:
  """Global batch rows must split evenly over devices (else IndivisibleError later)."""
  from autorec_jax.config.checks import ConfigError  # pylint: disable=import-outside-toplevel
  n = jax.device_count()
  if batch_size % n:
    raise ConfigError(f"{what}={batch_size} is not divisible by the {n} devices; "
                     f"use a multiple of {n}")


def maybe_initialize_distributed(coordinator_address: str | None, num_processes: int | None,
                                 process_id: int | None) -> None:
  """Starts JAX's multi-host runtime when asked to (must run before any other JAX call).

  With a coordinator address, the three values are passed through; with none, nothing
  happens and the run is single-process.
  """
  if coordinator_address:
    jax.distributed.initialize(coordinator_address=coordinator_address,
                               num_processes=num_processes, process_id=process_id)
