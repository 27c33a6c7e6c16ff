#!/usr/bin/env bash
# Sourced by test/run.sh after up.sh: exports KAPPA_TEST_KAFKA=127.0.0.1:PORT,
# KAPPA_TEST_S3=http://127.0.0.1:PORT and the S3 test credentials written by up.sh.
# shellcheck source=common.sh
source "$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)/common.sh"
# shellcheck disable=SC1090
[ -f "$ENV_FILE" ] && source "$ENV_FILE"
true
