#!/usr/bin/env bash
# Installs everything (install.sh) and runs the whole test suite, in parallel, as root.
set -euo pipefail
cd "$(dirname "$0")"
bash install.sh
exec /opt/pyoci/venv/bin/pytest -n auto -q -p no:cacheprovider tests "$@"
