#!/usr/bin/env bash
# The whole test suite: lint + format check, type check/build, unit, e2e and integration tests.
# e2e tests open kappa's tables with Delta Kernel for Java (test/delta-kernel/build.sh).
# Integration tests start a real Kafka broker and S3Proxy themselves (test/servers/).
set -euo pipefail
cd "$(dirname "$0")/.."
[ -d node_modules ] || npm ci --no-audit --no-fund
echo "== biome (format + lint)"
npx --no-install biome check .
echo "== tsc (strict)"
npx --no-install tsc -p tsconfig.json
echo "== tests"
if [ -x test/servers/up.sh ] && [ "${KAPPA_SKIP_SERVERS:-}" != 1 ]; then
  trap 'test/servers/down.sh || true' EXIT
  test/servers/up.sh # fetches the artifacts from Maven Central on first use
  # shellcheck disable=SC1091
  source test/servers/env.sh
fi
mapfile -t files < <(find dist/test -name '*.test.js' | sort)
if [ -n "${KAPPA_TEST_FILTER:-}" ]; then mapfile -t files < <(printf '%s\n' "${files[@]}" | grep -E "$KAPPA_TEST_FILTER"); fi
# The independent Delta reader (Delta Kernel for Java) that tests importing test/delta.ts compare
# tables with; built from Maven Central once per clone (test/delta-kernel/target/, gitignored).
if grep -Elq "from '(\.\./)+delta\.js'" "${files[@]}" /dev/null; then test/delta-kernel/build.sh; fi
node --test --test-timeout="${KAPPA_TEST_TIMEOUT_MS:-600000}" --test-reporter=spec --test-concurrency="${KAPPA_TEST_CONCURRENCY:-2}" "${files[@]}"
