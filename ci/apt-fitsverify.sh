#!/usr/bin/env bash
# Install HEASARC's FITS verifier (Debian package `fitsverify`) for the tests
# that check every FITS file xcube writes (tests/io/test_io_fitsverify.py).
#
# Idempotent: does nothing when `fitsverify` is already on PATH. Exits 0 with a
# message (and no verifier) when it cannot install it here: not root, no
# apt-get, or apt-get failed; those tests then skip and say why.
set -uo pipefail

say() { echo "apt-fitsverify: $*"; }

if command -v fitsverify >/dev/null 2>&1; then
    say "fitsverify already installed ($(command -v fitsverify))"
    exit 0
fi
if [ "$(id -u)" != 0 ]; then
    say "not root: cannot apt-get install fitsverify; the fitsverify tests will be skipped"
    exit 0
fi
if ! command -v apt-get >/dev/null 2>&1; then
    say "no apt-get on this machine: install fitsverify by hand; the fitsverify tests will be skipped"
    exit 0
fi
export DEBIAN_FRONTEND=noninteractive
if ! apt-get install -y -qq --no-install-recommends fitsverify >/dev/null 2>&1; then
    # the package lists may be missing or stale: refresh them once and try again
    if ! { apt-get update -qq && apt-get install -y -qq --no-install-recommends fitsverify >/dev/null; }; then
        say "apt-get could not install fitsverify; the fitsverify tests will be skipped"
        exit 0
    fi
fi
say "installed $(command -v fitsverify)"
