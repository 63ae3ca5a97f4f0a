#!/usr/bin/env bash
# Checks the toolkit without its optional native CPU path (autorec_jax/native/), as
# `make test-no-native` (part of `make test`) runs it:
#
#   bash tests/without_native.sh PYTHON [pytest arguments...]
#
# PYTHON is the project's venv interpreter (.venv/bin/python). The checkout's files
# (tracked and new, not ignored) are copied to a temporary folder and the native
# folder deleted there. The copy is run by a bare venv that sees PYTHON's installed
# dependencies but not its editable install of this checkout: that install's finder
# would import autorec_jax.native from the checkout, deleted folder or not. There
# pytest runs (by default the tests marked neither `native`, `slow` nor `e2e`; pytest
# arguments given replace that), then a tiny training run of configs/movielens_1m.py
# that must report the dense path for want of the native one.
set -euo pipefail

python=$(cd "$(dirname "$1")" && pwd)/$(basename "$1")
shift
pytest_args=("$@")
if [ ${#pytest_args[@]} -eq 0 ]; then
  pytest_args=(-m "not native and not slow and not e2e" tests)
fi
checkout=$(cd "$(dirname "$0")/.." && pwd)
# Real data where the test suite looks for it by default (conftest.py).
export AUTOREC_DATA_DIR="${AUTOREC_DATA_DIR:-$(dirname "$checkout")/shared/data}"

tmp=$(mktemp -d "${TMPDIR:-/tmp}/autorec_no_native.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
start=$SECONDS

mkdir "$tmp/src"
(cd "$checkout" && git ls-files -z --cached --others --exclude-standard \
   | tar --null --files-from=- --ignore-failed-read -cf - 2>/dev/null) \
  | tar -xf - -C "$tmp/src"
rm -rf "$tmp/src/autorec_jax/native"

"$python" -m venv --without-pip "$tmp/venv"
bare="$tmp/venv/bin/python"
site_packages() { "$1" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])'; }
# A path line in a .pth file adds the folder to sys.path without processing the .pth
# files in it, so the editable install's finder is not installed.
site_packages "$python" > "$(site_packages "$bare")/autorec_dependencies.pth"

cd "$tmp/src"
export PYTHONPATH="$tmp/src"
# The compiled programs the checkout's own test run cached (tests/conftest.py).
export AUTOREC_TEST_JAX_CACHE="${AUTOREC_TEST_JAX_CACHE:-$checkout/.pytest_cache/jax_compilation_cache}"
"$bare" - <<'EOF'
import os, sys
import autorec_jax
where = os.path.dirname(os.path.abspath(autorec_jax.__file__))
if where != os.path.join(os.getcwd(), "autorec_jax"):
  sys.exit(f"autorec_jax was imported from {where}, not from the copy")
try:
  import autorec_jax.native
except ModuleNotFoundError:
  print(f"without native: autorec_jax from {where}, autorec_jax.native not importable")
else:
  sys.exit(f"autorec_jax.native is still importable ({autorec_jax.native.__file__})")
EOF
"$bare" -m pytest -q -n 2 -p no:cacheprovider "${pytest_args[@]}"
"$bare" -m autorec_jax.main --config=configs/movielens_1m.py:tiny --workdir="$tmp/run" \
  --verbosity=0 > "$tmp/main.log" 2>&1 || { tail -n 30 "$tmp/main.log"; exit 1; }
grep "input path:\|optimizer update:\|test RMSE" "$tmp/main.log"
grep -q "input path: dense (auto: native CPU path not installed)" "$tmp/main.log"
echo "without native: passed in $((SECONDS - start)) s"
