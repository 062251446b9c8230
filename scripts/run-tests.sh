#!/usr/bin/env bash
# Runs ctest in each build directory given; fails if any test fails.
set -euo pipefail
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
export OMPI_MCA_rmaps_base_oversubscribe=1 OMPI_MCA_btl_vader_single_copy_mechanism=none
# Leak checking in the sanitizer build; Criterion forks per test.
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=0}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}
# Criterion's own runner leaks a little; our code must not.
export LSAN_OPTIONS=${LSAN_OPTIONS:-suppressions=$(cd "$(dirname "$0")/.." && pwd)/tests/lsan.supp:print_suppressions=0}
status=0
for dir in "$@"; do
  echo "== ctest in $dir"
  tmp=$(mktemp -d)
  # PM_TEST_LABELS: a ctest label regex to run only part of the suite;
  # PM_TEST_EXCLUDE: a label regex left out (default: none).
  if ! TMPDIR=$tmp ctest --test-dir "$dir" --output-on-failure -j 2 --timeout 120 \
       ${PM_TEST_LABELS:+-L "$PM_TEST_LABELS"} ${PM_TEST_EXCLUDE:+-LE "$PM_TEST_EXCLUDE"}; then
    status=1
  fi
  rm -rf "$tmp"
done
exit $status
