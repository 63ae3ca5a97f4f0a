"""What reaches the terminal from the libraries' loggers."""

import logging as std_logging

from absl import logging

from autorec_jax.runtime import console


def _record(pathname, level, msg):
  return std_logging.LogRecord("absl", level, pathname, 1, msg, None, None)


def test_orbax_chatter_and_advisories_are_dropped_and_real_warnings_kept():
  orbax = "/venv/site-packages/orbax/checkpoint/checkpoint_manager.py"
  dropped = [
      _record(orbax, std_logging.INFO, "Saving checkpoint 12"),
      _record(orbax, std_logging.WARNING, "Waiting for previous save to complete took "
              "1.23 seconds. If this number is high, consider checkpointing less frequently."),
      _record(orbax, std_logging.WARNING, "Step 3 did not provide metrics"),
      _record(orbax, logging.converter.ABSL_TO_STANDARD[logging.ERROR], "write failed"),
      _record("/venv/site-packages/jax/_src/xla_bridge.py", std_logging.INFO,
              "Unable to initialize backend 'tpu'"),
  ]
  kept = [
      _record(orbax, std_logging.WARNING, "Checkpoint directory is not writable"),
      _record("/repo/autorec_jax/training/loop.py", std_logging.INFO, "input path: dense"),
      _record("/venv/site-packages/jax/_src/xla_bridge.py", std_logging.WARNING,
              "No GPU/TPU found"),
  ]
  assert [console._quiet_library_info(r) for r in dropped] == [False] * len(dropped)
  assert [console._quiet_library_info(r) for r in kept] == [True] * len(kept)


def test_orbax_tasks_whose_errors_were_left_unretrieved_are_dropped():
  def asyncio_record(task_repr):
    return std_logging.LogRecord(
        "asyncio", std_logging.ERROR, "/usr/lib/python3.11/asyncio/base_events.py", 1,
        "Task exception was never retrieved\nfuture: " + task_repr, None, None)

  orbax_read = asyncio_record(
      "<Task finished name='Task-7' coro=<async_deserialize() done, defined at "
      "/venv/site-packages/orbax/checkpoint/_src/serialization/serialization.py:377> "
      "exception=ValueError('OUT_OF_RANGE: Error reading')>")
  other = asyncio_record("<Task finished name='Task-8' coro=<fetch() done, defined at "
                         "/repo/mine.py:3> exception=ValueError('x')>")
  assert console._quiet_library_info(orbax_read) is False
  assert console._quiet_library_info(other) is True
