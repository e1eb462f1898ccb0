# shellcheck shell=bash
# Helpers to run moto_server, the second S3 implementation the store suite runs against.
# Sourced by .ci/run; a developer can use them too:
#   source .ci/moto.sh && moto_install && moto_start && cargo test --test store_conformance
#
# moto does not check signatures, so it complements (not replaces) the in-process s3s-fs
# server; it brings a second, independent reading of the S3 API (404 vs 412, token formats).

MOTO_CI_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
MOTO_VENV="$MOTO_CI_DIR/.venv"
MOTO_PYDEPS="$MOTO_CI_DIR/.pydeps"
MOTO_LOG="$MOTO_CI_DIR/.moto.log"
# moto 5 is the API generation these tests were written against.
MOTO_PACKAGES=("moto>=5,<6" flask flask-cors)

# Installs moto into .ci/.venv (or, where python3 has no venv module, as on a Debian
# python3 without python3-venv, into .ci/.pydeps) unless a previous run completed it.
# Sets MOTO_PYTHON and PYTHONPATH so that "$MOTO_PYTHON" -m moto.server works.
moto_install() {
    local py=${PYTHON:-python3}
    if [[ -f "$MOTO_VENV/.ctsguard-complete" ]]; then
        MOTO_PYTHON="$MOTO_VENV/bin/python"
        return 0
    fi
    if [[ -f "$MOTO_PYDEPS/.ctsguard-complete" ]]; then
        MOTO_PYTHON="$py"
        export PYTHONPATH="$MOTO_PYDEPS${PYTHONPATH:+:$PYTHONPATH}"
        return 0
    fi
    local start=$SECONDS
    echo "moto: installing ${MOTO_PACKAGES[*]} (about half a minute)" >&2
    rm -rf "$MOTO_VENV" "$MOTO_PYDEPS"
    if "$py" -m venv "$MOTO_VENV" >/dev/null 2>&1 && [[ -x "$MOTO_VENV/bin/python" ]]; then
        "$MOTO_VENV/bin/python" -m pip install --quiet --disable-pip-version-check \
            "${MOTO_PACKAGES[@]}"
        touch "$MOTO_VENV/.ctsguard-complete"
        MOTO_PYTHON="$MOTO_VENV/bin/python"
    else
        rm -rf "$MOTO_VENV"
        echo "moto: no working '$py -m venv'; installing into $MOTO_PYDEPS instead" >&2
        # --target keeps the system site-packages untouched, so PEP 668's guard does not
        # apply; older pips do not know the flag, hence the second try.
        "$py" -m pip install --quiet --disable-pip-version-check --target "$MOTO_PYDEPS" \
            --break-system-packages "${MOTO_PACKAGES[@]}" ||
            "$py" -m pip install --quiet --disable-pip-version-check --target "$MOTO_PYDEPS" \
                "${MOTO_PACKAGES[@]}"
        touch "$MOTO_PYDEPS/.ctsguard-complete"
        MOTO_PYTHON="$py"
        export PYTHONPATH="$MOTO_PYDEPS${PYTHONPATH:+:$PYTHONPATH}"
    fi
    echo "moto: installed in $((SECONDS - start)) s" >&2
}

# Starts moto_server on a free loopback port in the background, waits until it answers,
# and exports CTSGUARD_TEST_S3_ENDPOINT plus the dummy credentials moto accepts.
# Sets MOTO_PID; the caller stops it with moto_stop (e.g. from an EXIT trap).
moto_start() {
    local port
    port=$("$MOTO_PYTHON" -c 'import socket
s = socket.socket()
s.bind(("127.0.0.1", 0))
print(s.getsockname()[1])')
    "$MOTO_PYTHON" -m moto.server -H 127.0.0.1 -p "$port" >"$MOTO_LOG" 2>&1 &
    MOTO_PID=$!
    local endpoint="http://127.0.0.1:$port"
    local i
    for ((i = 0; i < 120; i++)); do
        if ! kill -0 "$MOTO_PID" 2>/dev/null; then
            echo "moto: moto_server exited during start-up:" >&2
            tail -n 30 "$MOTO_LOG" >&2 || true
            return 1
        fi
        if "$MOTO_PYTHON" -c 'import sys, urllib.request
urllib.request.urlopen(sys.argv[1], timeout=2)' "$endpoint/" >/dev/null 2>&1; then
            export CTSGUARD_TEST_S3_ENDPOINT="$endpoint"
            export AWS_ACCESS_KEY_ID=test
            export AWS_SECRET_ACCESS_KEY=test
            echo "moto: moto_server answering at $endpoint (pid $MOTO_PID)" >&2
            return 0
        fi
        sleep 0.5
    done
    echo "moto: moto_server did not answer within 60 s:" >&2
    tail -n 30 "$MOTO_LOG" >&2 || true
    return 1
}

moto_stop() {
    if [[ -n "${MOTO_PID:-}" ]]; then
        kill "$MOTO_PID" 2>/dev/null || true
        wait "$MOTO_PID" 2>/dev/null || true
        MOTO_PID=
    fi
}
