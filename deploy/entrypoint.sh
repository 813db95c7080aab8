#!/bin/sh
# The container's entry point: `serve` runs under python -OO (docstrings and asserts left out: 3.3 MiB less resident
# per process, issue 17; tests/e2e/test_optimized_runtime.py); every other command, and `serve --help`, runs without
# it, because the commands' help texts are their docstrings. -P keeps the working directory (the data volume) off the
# import path. Both kinds of bytecode were compiled when the image was built: the non-root user cannot write them.
set -eu
python=${LFSD_PYTHON:-python}
if [ "${1:-}" = serve ]; then
  for arg in "$@"; do
    if [ "$arg" = --help ]; then exec "$python" -P -m lfsd "$@"; fi
  done
  exec "$python" -OO -P -m lfsd "$@"
fi
exec "$python" -P -m lfsd "$@"
