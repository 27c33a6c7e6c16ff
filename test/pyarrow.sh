#!/usr/bin/env bash
# Installs pyarrow (the independent Arrow reader of the binary stream test, issue 14) into a
# virtualenv under test/.py (gitignored), once, from the machine's configured Python package index,
# and prints the path of its python. Prints nothing and exits 1 when it cannot be installed.
set -euo pipefail
cd "$(dirname "$0")/.."
PINS=(pyarrow==25.0.1)
py=test/.py/bin/python
if ! "$py" -c 'import pyarrow' 2> /dev/null; then
  [ -x "$py" ] || python3 -m venv test/.py >&2
  test/.py/bin/pip install -q --retries 0 "${PINS[@]}" 2>&1 |
    grep -v -e 'Retrying' -e 'NewConnectionError' -e 'is ignored' >&2 || true
  "$py" -c 'import pyarrow' >&2 || exit 1
fi
echo "$PWD/$py"
