#!/usr/bin/env bash
# Builds the libFuzzer target with clang and fuzzes the PCL front end for
# SECONDS (default 60), starting from a copy of the seed corpus.
#   bash fuzz/run.sh [SECONDS]
# A crash, leak, timeout or out-of-memory is a finding: the reproducer is
# kept in fuzz/findings/ and the script fails.
set -euo pipefail
cd "$(dirname "$0")/.."
seconds="${1:-60}"

cmake -S . -B build-fuzz -DCMAKE_C_COMPILER=clang -DCMAKE_BUILD_TYPE=RelWithDebInfo \
  -DPUNIX_FUZZ=ON -DPUNIX_TESTS=OFF >/dev/null
cmake --build build-fuzz --target fuzz_pcl_check -j"$(nproc)" >/dev/null

work=fuzz/corpus-work
mkdir -p "$work" fuzz/findings
cp -n fuzz/corpus/* "$work"/ 2>/dev/null || true

set +e
build-fuzz/fuzz/fuzz_pcl_check "$work" \
  -dict=fuzz/pcl.dict -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 \
  -max_len=65536 -print_final_stats=1 -artifact_prefix=fuzz/findings/ 2>fuzz/corpus-work.log
rc=$?
set -e
grep -E '^(stat::number_of_executed_units|stat::new_units_added|stat::peak_rss_mb)' fuzz/corpus-work.log || true
if [ "$rc" -ne 0 ]; then
  tail -n 60 fuzz/corpus-work.log
  echo "fuzz: finding after a run of at most ${seconds}s; reproducer in fuzz/findings/"
  echo "0 passed, 1 failed"
  exit 1
fi
echo "fuzz: ${seconds}s without a finding"
echo "1 passed, 0 failed"
