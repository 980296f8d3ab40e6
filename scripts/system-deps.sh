#!/usr/bin/env bash
# Installs the Debian packages that tests and benchmarks use, only where they are missing.
# Without root (or without apt-get) it says what is missing and carries on: the tests that
# need those packages skip themselves with the reason. In CI (CI=true) nothing may be
# skipped, so a package it cannot install is an error.
set -euo pipefail
declare -A wanted=([sshd]=openssh-server [ip]=iproute2 [redis-server]=redis-server [iptables]=iptables
                  [java]=default-jre-headless [etcd]=etcd-server)
missing=()
for cmd in "${!wanted[@]}"; do
  if ! command -v "$cmd" >/dev/null 2>&1 && [ ! -x "/usr/sbin/$cmd" ]; then
    missing+=("${wanted[$cmd]}")
  fi
done
# Apache ZooKeeper's jars: the reference the ZooKeeper semantics suite is checked against.
[ -f /usr/share/java/zookeeper.jar ] || missing+=(zookeeper)
[ ${#missing[@]} -eq 0 ] && exit 0
if [ "$(id -u)" -ne 0 ] || ! command -v apt-get >/dev/null 2>&1; then
  if [ "${CI:-}" = "true" ]; then
    echo "system-deps: error: CI needs ${missing[*]} and cannot install them (needs root and apt-get)" >&2
    exit 1
  fi
  echo "system-deps: not installing ${missing[*]} (needs root and apt-get); tests that need them will skip" >&2
  exit 0
fi
echo "system-deps: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
if ! { apt-get update -qq && apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null; }; then
  echo "system-deps: error: could not install ${missing[*]}" >&2
  exit 1
fi
