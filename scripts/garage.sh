#!/usr/bin/env bash
# A real S3-compatible server (Garage, single node) on loopback for the tests of the
# Python, Node and browser packages.
#
#   scripts/garage.sh install         build garage into .tools/bin (cached; skipped when present)
#   scripts/garage.sh start           start one server (reused if already running), print its env
#   scripts/garage.sh env [--export]  print the env file of the running server
#   scripts/garage.sh status          exit 0 when a server is running and answering
#   scripts/garage.sh bucket NAME     create one more bucket (same key, same CORS rule)
#   scripts/garage.sh check           end-to-end S3 self-test against the running server
#   scripts/garage.sh stop            stop the server and remove its run directory
#
# The env file (target/garage/env) holds KEY=VALUE lines: ISEC_S3_ENDPOINT, ISEC_S3_REGION,
# ISEC_S3_BUCKET, ISEC_S3_ACCESS_KEY_ID, ISEC_S3_SECRET_ACCESS_KEY, ISEC_S3_ADMIN,
# ISEC_S3_METRICS, ISEC_GARAGE_ADMIN_TOKEN, ISEC_GARAGE_PID, ISEC_GARAGE_DIR,
# ISEC_GARAGE_CONFIG, ISEC_GARAGE_BIN. Load it with `set -a; . target/garage/env; set +a`
# or `eval "$(scripts/garage.sh env --export)"`.
#
# Overrides: ISEC_GARAGE_BIN (use this garage binary, skip install), ISEC_GARAGE_STATE
# (state directory, default target/garage), GARAGE_VERSION (default 2.5.0),
# ISEC_TOOLS_CACHE (a per-machine copy of the built binary shared by every clone, default
# ~/.cache/isec-tools; a build takes 10-25 minutes on 2 cores, so other clones on the same
# machine reuse it; a new machine builds it).
set -euo pipefail

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
GARAGE_VERSION="${GARAGE_VERSION:-2.5.0}"
TOOLS="$REPO/.tools"
BUILD_DIR="$REPO/target/garage-build"
STATE="${ISEC_GARAGE_STATE:-$REPO/target/garage}"
ENV_FILE="$STATE/env"
BIN="${ISEC_GARAGE_BIN:-$TOOLS/bin/garage}"
CACHE="${ISEC_TOOLS_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/isec-tools}/garage-$GARAGE_VERSION"
S3SIG="$REPO/scripts/s3sig.py"
BUCKET="isec-test"
KEY_NAME="isec-test-key"
REGION="garage"

log() { printf 'garage.sh: %s\n' "$*" >&2; }
die() { log "error: $*"; exit 1; }

# --- install -------------------------------------------------------------------------------

bin_ok() {
  [ -x "$BIN" ] || return 1
  local v
  v="$("$BIN" --version 2>/dev/null)" || return 1
  # With ISEC_GARAGE_BIN the caller chose the version; otherwise insist on the pinned one.
  if [ -z "${ISEC_GARAGE_BIN:-}" ]; then
    case "$v" in *"$GARAGE_VERSION"*) ;; *) return 1 ;; esac
  fi
}

cmd_install() {
  if bin_ok; then
    log "garage present: $BIN ($("$BIN" --version 2>/dev/null | head -n1))"
    return 0
  fi
  [ -z "${ISEC_GARAGE_BIN:-}" ] || die "ISEC_GARAGE_BIN=$ISEC_GARAGE_BIN does not run"
  command -v cargo >/dev/null || die "cargo not found"
  mkdir -p "$TOOLS"
  # Keep the install root out of git even where .gitignore lacks it.
  [ -f "$TOOLS/.gitignore" ] || printf '*\n' >"$TOOLS/.gitignore"
  # Serialise concurrent installs (two test suites starting at once).
  exec 8>"$TOOLS/.install.lock"
  flock 8
  if bin_ok; then exec 8>&-; return 0; fi
  if [ -z "${ISEC_GARAGE_BIN:-}" ] && [ -x "$CACHE" ] && "$CACHE" --version 2>/dev/null | grep -q "$GARAGE_VERSION"; then
    mkdir -p "$(dirname "$BIN")"
    cp "$CACHE" "$BIN"
    exec 8>&-
    bin_ok && { log "garage $GARAGE_VERSION from the machine's cache ($CACHE)"; return 0; }
  fi
  log "building garage $GARAGE_VERSION into $TOOLS (build dir $BUILD_DIR; 8-15 min cold on 2 idle cores, more under load)"
  local start=$SECONDS
  # --locked uses the lockfile shipped in the crate (reproducible); fall back to a fresh
  # resolution if the registry here lacks a version it pins.
  if ! CARGO_TARGET_DIR="$BUILD_DIR" cargo install garage --version "=$GARAGE_VERSION" \
      --locked --root "$TOOLS" 8>&-; then
    log "cargo install --locked failed; retrying without --locked"
    CARGO_TARGET_DIR="$BUILD_DIR" cargo install garage --version "=$GARAGE_VERSION" \
      --root "$TOOLS" 8>&-
  fi
  exec 8>&-
  bin_ok || die "garage was built but $BIN does not run"
  { mkdir -p "$(dirname "$CACHE")" && cp "$BIN" "$CACHE.tmp.$$" && mv "$CACHE.tmp.$$" "$CACHE"; } 2>/dev/null \
    || log "could not keep a copy in $CACHE (next clone builds again)"
  log "garage installed in $((SECONDS - start)) s: $("$BIN" --version | head -n1)"
}

# --- helpers -------------------------------------------------------------------------------

# Value of KEY in the env file ($2 defaults to $ENV_FILE).
env_get() {
  local f="${2:-$ENV_FILE}"
  [ -f "$f" ] || return 1
  sed -n "s/^$1=//p" "$f" | head -n1
}

# Is PID a garage server whose command line names the config CFG?
is_our_server() {
  local pid="$1" cfg="$2"
  [ -n "$pid" ] && [ -r "/proc/$pid/cmdline" ] || return 1
  tr '\0' ' ' <"/proc/$pid/cmdline" | grep -qF -- "$cfg"
}

kill_pid() {
  local pid="$1" i
  kill -TERM "$pid" 2>/dev/null || return 0
  for i in $(seq 1 50); do
    kill -0 "$pid" 2>/dev/null || return 0
    sleep 0.1
  done
  kill -KILL "$pid" 2>/dev/null || true
  for i in $(seq 1 20); do
    kill -0 "$pid" 2>/dev/null || return 0
    sleep 0.1
  done
}

# Stop every server that a run directory under $STATE records, and remove those directories.
cleanup_runs() {
  local d pid
  for d in "$STATE"/run-*; do
    [ -d "$d" ] || continue
    pid="$(cat "$d/pid" 2>/dev/null || true)"
    if is_our_server "$pid" "$d/garage.toml"; then
      log "stopping garage pid $pid ($d)"
      kill_pid "$pid"
    fi
    rm -rf "$d"
  done
  # Servers whose run directory was deleted under them (e.g. `rm -rf target`) still name
  # it on their command line: stop those too, so they do not hold ports or CPU.
  local p
  for p in /proc/[0-9]*; do
    pid="${p#/proc/}"
    [ "$pid" != "$$" ] || continue
    local cmd
    cmd="$(tr '\0' ' ' 2>/dev/null <"$p/cmdline")" || continue
    if [[ "$cmd" == *" -c $STATE/run-"*"/garage.toml server "* ]]; then
      log "stopping leftover garage pid $pid"
      kill_pid "$pid"
    fi
  done
  rm -f "$ENV_FILE"
}

http_status() { # URL [TOKEN] -> prints the HTTP status code, or 000
  python3 - "$@" <<'EOF'
import sys, urllib.request, urllib.error
req = urllib.request.Request(sys.argv[1])
if len(sys.argv) > 2 and sys.argv[2]:
    req.add_header("Authorization", "Bearer " + sys.argv[2])
try:
    with urllib.request.urlopen(req, timeout=2) as r:
        print(r.status)
except urllib.error.HTTPError as e:
    print(e.code)
except Exception:
    print("000")
EOF
}

# Is the server of the env file alive and answering on S3 and admin?
running() {
  local pid cfg s3 admin
  pid="$(env_get ISEC_GARAGE_PID)" || return 1
  cfg="$(env_get ISEC_GARAGE_CONFIG)" || return 1
  s3="$(env_get ISEC_S3_ENDPOINT)" || return 1
  admin="$(env_get ISEC_S3_ADMIN)" || return 1
  is_our_server "$pid" "$cfg" || return 1
  [ "$(http_status "$admin/health")" = 200 ] || return 1
  # The S3 port accepts connections (a TCP connect, so no request shows in the metrics).
  python3 -c 'import socket, sys, urllib.parse as u
a = u.urlsplit(sys.argv[1]); socket.create_connection((a.hostname, a.port), 2).close()' \
    "$s3" 2>/dev/null || return 1
}

# Print N ports on 127.0.0.1: the preferred ones if all free, else kernel-chosen free ones.
pick_ports() {
  python3 - "$@" <<'EOF'
import socket, sys
preferred = [int(p) for p in sys.argv[1:]]
def free(port):
    s = socket.socket()
    # As the server does: connections of a previous run in TIME_WAIT do not block the port.
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        s.bind(("127.0.0.1", port))
        return True
    except OSError:
        return False
    finally:
        s.close()
if all(free(p) for p in preferred):
    print(*preferred)
else:
    socks = []
    for _ in preferred:
        s = socket.socket()
        s.bind(("127.0.0.1", 0))
        socks.append(s)
    print(*(s.getsockname()[1] for s in socks))
    for s in socks:
        s.close()
EOF
}

g() { "$BIN" -c "$CFG" "$@"; }

# --- start / stop --------------------------------------------------------------------------

lock_state() {
  mkdir -p "$STATE"
  exec 9>"$STATE/.lock"
  flock 9
}

cmd_start() {
  lock_state
  if running; then
    log "reusing running garage (pid $(env_get ISEC_GARAGE_PID))"
    cat "$ENV_FILE"
    return 0
  fi
  # Whatever is recorded is dead, unresponsive or half set up: clear it.
  cleanup_runs
  bin_ok || cmd_install

  local dir
  dir="$(mktemp -d "$STATE/run-XXXXXX")"
  CFG="$dir/garage.toml"
  local ports s3_port rpc_port admin_port secret admin_token
  ports="$(pick_ports 3900 3901 3903)"
  read -r s3_port rpc_port admin_port <<<"$ports"
  secret="$(od -An -tx1 -N32 /dev/urandom | tr -d ' \n')"
  admin_token="$(od -An -tx1 -N24 /dev/urandom | tr -d ' \n')"
  mkdir -p "$dir/meta" "$dir/data"
  cat >"$CFG" <<EOF
metadata_dir = "$dir/meta"
data_dir = "$dir/data"
db_engine = "sqlite"
replication_factor = 1
rpc_bind_addr = "127.0.0.1:$rpc_port"
rpc_public_addr = "127.0.0.1:$rpc_port"
rpc_secret = "$secret"

[s3_api]
s3_region = "$REGION"
api_bind_addr = "127.0.0.1:$s3_port"
root_domain = ".s3.garage.localhost"

[admin]
api_bind_addr = "127.0.0.1:$admin_port"
admin_token = "$admin_token"
EOF
  chmod 600 "$CFG"

  # setsid: the server outlives the caller's process group; fds 8/9 (locks) are not inherited.
  NO_COLOR=1 RUST_LOG="${RUST_LOG:-garage=info}" setsid "$BIN" -c "$CFG" server \
    </dev/null >"$dir/garage.log" 2>&1 8>&- 9>&- &
  local pid=$!
  echo "$pid" >"$dir/pid"
  log "garage pid $pid, S3 127.0.0.1:$s3_port, RPC :$rpc_port, admin :$admin_port ($dir)"

  fail() {
    log "error: $*"
    log "last lines of $dir/garage.log:"
    tail -n 30 "$dir/garage.log" >&2 || true
    kill_pid "$pid"
    rm -rf "$dir"
    exit 1
  }

  # Wait for RPC.
  local node="" i
  for i in $(seq 1 100); do
    kill -0 "$pid" 2>/dev/null || fail "garage exited during start-up"
    if node="$(g node id -q 2>/dev/null)"; then break; fi
    node=""
    sleep 0.2
  done
  [ -n "$node" ] || fail "garage did not answer on RPC within 20 s"
  node="${node%%@*}"

  g layout assign -z dc1 -c 1G "$node" >/dev/null || fail "layout assign"
  g layout apply --version 1 >/dev/null || fail "layout apply"

  for i in $(seq 1 100); do
    [ "$(http_status "http://127.0.0.1:$admin_port/health")" = 200 ] && break
    kill -0 "$pid" 2>/dev/null || fail "garage exited after layout apply"
    sleep 0.2
  done
  [ "$(http_status "http://127.0.0.1:$admin_port/health")" = 200 ] \
    || fail "cluster not healthy within 20 s"

  g bucket create "$BUCKET" >/dev/null || fail "bucket create"
  local keyinfo key_id secret_key
  keyinfo="$(g key create "$KEY_NAME")" || fail "key create"
  key_id="$(printf '%s\n' "$keyinfo" | sed -n 's/^Key ID:[[:space:]]*//p' | head -n1)"
  secret_key="$(printf '%s\n' "$keyinfo" | sed -n 's/^Secret key:[[:space:]]*//p' | head -n1)"
  [ -n "$key_id" ] && [ -n "$secret_key" ] || fail "cannot parse 'garage key create' output"
  g bucket allow --read --write --owner "$BUCKET" --key "$key_id" >/dev/null \
    || fail "bucket allow"

  local tmp="$dir/env.tmp"
  cat >"$tmp" <<EOF
ISEC_S3_ENDPOINT=http://127.0.0.1:$s3_port
ISEC_S3_REGION=$REGION
ISEC_S3_BUCKET=$BUCKET
ISEC_S3_ACCESS_KEY_ID=$key_id
ISEC_S3_SECRET_ACCESS_KEY=$secret_key
ISEC_S3_ADMIN=http://127.0.0.1:$admin_port
ISEC_S3_METRICS=http://127.0.0.1:$admin_port/metrics
ISEC_GARAGE_ADMIN_TOKEN=$admin_token
ISEC_GARAGE_PID=$pid
ISEC_GARAGE_DIR=$dir
ISEC_GARAGE_CONFIG=$CFG
ISEC_GARAGE_BIN=$BIN
EOF
  chmod 600 "$tmp"

  # Permissive CORS rule through the S3 API (PutBucketCors), for the browser tests.
  python3 "$S3SIG" --env-file "$tmp" put-cors "$BUCKET" >/dev/null \
    || fail "PutBucketCors on $BUCKET"

  mv "$tmp" "$ENV_FILE"
  cat "$ENV_FILE"
}

cmd_bucket() {
  local name="${1:-}"
  [ -n "$name" ] || die "usage: garage.sh bucket NAME"
  lock_state
  running || die "no garage running (scripts/garage.sh start)"
  CFG="$(env_get ISEC_GARAGE_CONFIG)"
  local key_id
  key_id="$(env_get ISEC_S3_ACCESS_KEY_ID)"
  if ! g bucket info "$name" >/dev/null 2>&1; then
    g bucket create "$name" >/dev/null
  fi
  g bucket allow --read --write --owner "$name" --key "$key_id" >/dev/null
  python3 "$S3SIG" --env-file "$ENV_FILE" put-cors "$name" >/dev/null
  log "bucket $name ready"
}

cmd_stop() {
  lock_state
  local pid cfg
  if pid="$(env_get ISEC_GARAGE_PID)" && cfg="$(env_get ISEC_GARAGE_CONFIG)" \
      && is_our_server "$pid" "$cfg"; then
    log "stopping garage pid $pid"
    kill_pid "$pid"
  fi
  cleanup_runs
}

cmd_env() {
  [ -f "$ENV_FILE" ] || die "no env file: run scripts/garage.sh start"
  if [ "${1:-}" = "--export" ]; then
    sed 's/^/export /' "$ENV_FILE"
  else
    cat "$ENV_FILE"
  fi
}

cmd_status() {
  if running; then
    log "running: pid $(env_get ISEC_GARAGE_PID), $(env_get ISEC_S3_ENDPOINT)"
  else
    log "not running"
    return 1
  fi
}

cmd_check() {
  running || die "no garage running (scripts/garage.sh start)"
  python3 "$S3SIG" --env-file "$ENV_FILE" selftest
}

main() {
  case "${1:-}" in
    install) cmd_install ;;
    start) cmd_start ;;
    stop) cmd_stop ;;
    env) shift; cmd_env "$@" ;;
    status) cmd_status ;;
    bucket) shift; cmd_bucket "$@" ;;
    check) cmd_check ;;
    *)
      sed -n '2,/^set -euo/p' "${BASH_SOURCE[0]}" | sed '$d; s/^# \{0,1\}//' >&2
      exit 2
      ;;
  esac
}

# One line, parsed whole before it runs: editing this file during a long install is safe.
main "$@"; exit $?
