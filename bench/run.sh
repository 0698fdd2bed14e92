#!/usr/bin/env bash
# Builds an optimised, unsanitised punix in build-bench/ and runs the
# benchmarks against it.
#   bash bench/run.sh [goals|check|noop|hash|rollback|deploy|fsync|gc|history|syncs|concurrent|ssh|fleet|all] [--quick]
set -euo pipefail
cd "$(dirname "$0")/.."
what="${1:-all}"
quick="${2:-}"
# rollback and gc compare with nix (nix-bin); fsync, syncs and ssh count with
# strace. Only what the chosen experiments need is installed, and a failed
# install only skips those comparisons. openssh-server, which ssh needs, is
# never installed here: that would also start a system sshd on port 22.
need=""
case "$what" in
  all) need="nix-bin strace" ;;
  rollback|gc|goals) need="nix-bin" ;;
  fsync|syncs|ssh) need="strace" ;;
esac
for pkg in $need; do
  if ! dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q 'install ok installed'; then
    if [ "$(id -u)" -eq 0 ]; then
      DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "$pkg" >/dev/null ||
        echo "bench: could not install $pkg; those comparisons will be skipped" >&2
    else
      echo "bench: $pkg is missing; those comparisons will be skipped" >&2
    fi
  fi
done
cmake -S . -B build-bench -DCMAKE_BUILD_TYPE=Release -DPUNIX_TESTS=OFF >/dev/null
cmake --build build-bench -j"$(nproc)" >/dev/null
for e in goals check noop hash rollback deploy fsync gc; do
  if [ "$what" = all ] || [ "$what" = "$e" ]; then
    echo "== $e"
    build-bench/bench/bench build-bench/punix build-bench/bench/gen_program "$e" $quick
    echo
  fi
done
# The engine's experiments (bench_engine.c): the journal's history, syncs
# per op, stacks deployed at once.
for e in history syncs concurrent; do
  if [ "$what" = all ] || [ "$what" = "$e" ]; then
    echo "== $e"
    build-bench/bench/bench_engine build-bench/punix "$e" $quick
    echo
  fi
done
# The SSH transport against the same ops rebased locally (bench_ssh.c): as
# root, with its own sshd on loopback ports; skipped without root or sshd.
if [ "$what" = all ] || [ "$what" = ssh ]; then
  echo "== ssh"
  build-bench/bench/bench_ssh build-bench/punix $quick
  echo
fi
# punix fleet apply by number of hosts (bench_fleet.c): rebased (1, 20, 100
# hosts), and as root over loopback SSH with its own sshd (1 and 20 hosts,
# host mode and agentless); the SSH part skipped without root or sshd.
if [ "$what" = all ] || [ "$what" = fleet ]; then
  echo "== fleet"
  build-bench/bench/bench_fleet build-bench/punix $quick
  echo
fi
