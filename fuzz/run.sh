#!/usr/bin/env bash
# Builds the libFuzzer targets with clang and fuzzes each of them in turn,
# starting from a copy of its seed corpus, for SECONDS in all (default 60):
#   bash fuzz/run.sh [SECONDS]
#
# The time is split: the seven decoders of bytes punix reads (journal
# records, generation manifests, store registrations and marker, op plans,
# ssh_config and known_hosts, the host protocol's frames and bundle, and
# known_hosts as libssh2 takes it) share half of it equally, in whole
# seconds; the PCL front end (the largest surface, and the one that reads
# what people write) gets the rest, so the total stays SECONDS. Each target
# gets at least 1 s. With the default 60 s: the seven 4 s each, pcl 32 s.
#
# A crash, leak, failed invariant, timeout or out-of-memory is a finding:
# the run stops there, the reproducer is kept in fuzz/findings/ (its name
# starts with the target's), and the script prints "0 passed, 1 failed" and
# fails. Otherwise it prints one line per target and "N passed, 0 failed".
set -euo pipefail
cd "$(dirname "$0")/.."
seconds="${1:-60}"

#        name         binary             seed corpus                dictionary          max_len
targets=(
  "pcl          fuzz_pcl_check     fuzz/corpus                fuzz/pcl.dict       65536"
  "journal      fuzz_journal       fuzz/corpus-journal        -                   4096"
  "manifest     fuzz_manifest      fuzz/corpus-manifest       fuzz/json.dict      16384"
  "registration fuzz_registration  fuzz/corpus-registration   fuzz/json.dict      16384"
  "plan         fuzz_plan          fuzz/corpus-plan           fuzz/json.dict      16384"
  "ssh_config   fuzz_ssh_config    fuzz/corpus-ssh-config     -                   8192"
  "proto        fuzz_proto         fuzz/corpus-proto          -                   16384"
  "known_hosts  fuzz_known_hosts   fuzz/corpus-known-hosts    -                   8192"
)
ntargets=${#targets[@]}
rest_seconds=$((seconds / 2 / (ntargets - 1)))
[ "$rest_seconds" -ge 1 ] || rest_seconds=1
pcl_seconds=$((seconds - rest_seconds * (ntargets - 1)))
[ "$pcl_seconds" -ge 1 ] || pcl_seconds=1

cmake -S . -B build-fuzz -DCMAKE_C_COMPILER=clang -DCMAKE_BUILD_TYPE=RelWithDebInfo \
  -DPUNIX_FUZZ=ON -DPUNIX_TESTS=OFF >/dev/null
binaries=()
for t in "${targets[@]}"; do
  read -r _ bin _ _ _ <<<"$t"
  binaries+=("$bin")
done
cmake --build build-fuzz --target "${binaries[@]}" -j"$(nproc)" >/dev/null

mkdir -p fuzz/work fuzz/findings
passed=0
for t in "${targets[@]}"; do
  read -r name bin seeds dict max_len <<<"$t"
  secs=$rest_seconds
  [ "$name" = pcl ] && secs=$pcl_seconds
  work=fuzz/work/$name
  log=fuzz/work/$name.log
  mkdir -p "$work"
  cp -n "$seeds"/* "$work"/ 2>/dev/null || true
  opts=(-max_total_time="$secs" -timeout=10 -rss_limit_mb=2048 -max_len="$max_len"
        -print_final_stats=1 -artifact_prefix="fuzz/findings/$name-")
  [ "$dict" = - ] || opts+=(-dict="$dict")
  set +e
  "build-fuzz/fuzz/$bin" "$work" "${opts[@]}" 2>"$log"
  rc=$?
  set -e
  stat_of() { sed -n "s/^stat::$1: *//p" "$log" | tail -n 1; }
  if [ "$rc" -ne 0 ]; then
    tail -n 60 "$log"
    echo "fuzz: $name: finding after a run of at most ${secs}s; reproducer in fuzz/findings/"
    echo "0 passed, 1 failed"
    exit 1
  fi
  echo "fuzz: $name: ${secs}s without a finding ($(stat_of number_of_executed_units) executions," \
       "$(stat_of new_units_added) new units, peak $(stat_of peak_rss_mb) MB)"
  passed=$((passed + 1))
done
echo "$passed passed, 0 failed"
