#!/usr/bin/env bash
# A real S3-compatible server (Garage: one node, or a cluster of three) on loopback for the
# tests of the Python, Node and browser packages.
#
#   scripts/garage.sh install         build garage into .tools/bin (cached; skipped when present)
#   scripts/garage.sh start           start one server (reused if already running), print its env
#   scripts/garage.sh env [--export]  print the env file of the running server
#   scripts/garage.sh status          exit 0 when a server is running and answering
#   scripts/garage.sh bucket NAME     create one more bucket (same key, same CORS rule)
#   scripts/garage.sh check           end-to-end S3 self-test against the running server
#   scripts/garage.sh stop            stop the server and remove its run directory
#   scripts/garage.sh cluster start   start three nodes (replication factor 3, zones dc1-dc3) on
#                                     loopback, reused if all answer; prints nothing
#   scripts/garage.sh cluster env [--export]  print the cluster's env file
#   scripts/garage.sh cluster status  exit 0 when all three nodes run and answer
#   scripts/garage.sh cluster bucket NAME     create one more bucket on the cluster (same key)
#   scripts/garage.sh cluster node-stop N     stop node N (1-3) with SIGTERM and wait for it
#   scripts/garage.sh cluster node-start N    restart node N on its config and data, wait for S3
#   scripts/garage.sh cluster check   put/get across nodes, then with node 3 stopped
#   scripts/garage.sh cluster stop    stop the three nodes and remove their directory
#
# The env file (target/garage/env) holds KEY=VALUE lines: ISEC_S3_ENDPOINT, ISEC_S3_REGION,
# ISEC_S3_BUCKET, ISEC_S3_ACCESS_KEY_ID, ISEC_S3_SECRET_ACCESS_KEY, ISEC_S3_ADMIN,
# ISEC_S3_METRICS, ISEC_GARAGE_ADMIN_TOKEN, ISEC_GARAGE_PID, ISEC_GARAGE_DIR,
# ISEC_GARAGE_CONFIG, ISEC_GARAGE_BIN. Load it with `set -a; . target/garage/env; set +a`
# or `eval "$(scripts/garage.sh env --export)"`.
#
# The cluster (for scale-out tests that lose a node) lives in target/garage/cluster; its env
# file (target/garage/cluster/env) holds ISEC_S3_ENDPOINTS (the three S3 endpoints,
# comma-separated), ISEC_S3_ENDPOINT (node 1), ISEC_S3_REGION, ISEC_S3_BUCKET (isec-cluster),
# ISEC_S3_ACCESS_KEY_ID, ISEC_S3_SECRET_ACCESS_KEY, ISEC_S3_ADMIN, ISEC_S3_METRICS (node 1),
# ISEC_GARAGE_ADMIN_TOKEN, ISEC_GARAGE_CLUSTER_DIR, ISEC_GARAGE_CLUSTER_PIDS (comma-separated),
# ISEC_GARAGE_NODE{1,2,3}_PID, _CONFIG, _S3, _ADMIN, and ISEC_GARAGE_BIN. Its ports are
# 3910-3918 (node N: S3 3907+3N, RPC 3908+3N, admin 3909+3N) when free.
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
CLUSTER="$STATE/cluster"
CLUSTER_ENV="$CLUSTER/env"
CLUSTER_BUCKET="isec-cluster"
CLUSTER_KEY_NAME="isec-cluster-key"
CLUSTER_NODES="1 2 3"

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
  kill_leftovers "$STATE/run-*/garage.toml"
  rm -f "$ENV_FILE"
}

# Servers whose directory was deleted under them (e.g. `rm -rf target`) still name their
# config on their command line: stop those whose config path matches the glob $1 too, so they
# do not hold ports or CPU.
kill_leftovers() {
  local glob="$1" p pid cmd
  for p in /proc/[0-9]*; do
    pid="${p#/proc/}"
    [ "$pid" != "$$" ] || continue
    cmd="$(tr '\0' ' ' 2>/dev/null <"$p/cmdline")" || continue
    # shellcheck disable=SC2053 # $glob is a pattern on purpose
    if [[ "$cmd" == *" -c "$glob" server "* ]]; then
      log "stopping leftover garage pid $pid"
      kill_pid "$pid"
    fi
  done
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
  answering "$pid" "$cfg" "$s3" "$admin"
}

# Is PID the garage server of config CFG, healthy on its ADMIN URL, its S3 URL open?
answering() {
  local pid="$1" cfg="$2" s3="$3" admin="$4"
  is_our_server "$pid" "$cfg" || return 1
  [ "$(http_status "$admin/health")" = 200 ] || return 1
  # The S3 port accepts connections (a TCP connect, so no request shows in the metrics).
  python3 -c 'import socket, sys, urllib.parse as u
a = u.urlsplit(sys.argv[1]); socket.create_connection((a.hostname, a.port), 2).close()' \
    "$s3" 2>/dev/null || return 1
}

# GET ADMIN/health -> healthy (every storage node up), degraded (quorum everywhere, some node
# down), unavailable (some partition without quorum) or down (no answer).
health() {
  python3 - "$1/health" <<'EOF'
import urllib.request, urllib.error, sys
try:
    with urllib.request.urlopen(sys.argv[1], timeout=2) as r:
        print("healthy" if b"fully operational" in r.read() else "degraded")
except urllib.error.HTTPError as e:
    print("unavailable" if e.code == 503 else "down")
except Exception:
    print("down")
EOF
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

random_hex() { od -An -tx1 -N"$1" /dev/urandom | tr -d ' \n'; }

# write_config CFG DIR S3_PORT RPC_PORT ADMIN_PORT RPC_SECRET ADMIN_TOKEN REPLICATION_FACTOR
write_config() {
  local cfg="$1" dir="$2" s3_port="$3" rpc_port="$4" admin_port="$5" secret="$6" token="$7" rf="$8"
  mkdir -p "$dir/meta" "$dir/data"
  cat >"$cfg" <<EOF
metadata_dir = "$dir/meta"
data_dir = "$dir/data"
db_engine = "sqlite"
replication_factor = $rf
rpc_bind_addr = "127.0.0.1:$rpc_port"
rpc_public_addr = "127.0.0.1:$rpc_port"
rpc_secret = "$secret"

[s3_api]
s3_region = "$REGION"
api_bind_addr = "127.0.0.1:$s3_port"
root_domain = ".s3.garage.localhost"

[admin]
api_bind_addr = "127.0.0.1:$admin_port"
admin_token = "$token"
EOF
  chmod 600 "$cfg"
}

# Start the server of DIR/garage.toml in the background; its pid goes to DIR/pid, its output
# is appended to DIR/garage.log (a restarted node keeps the log of its earlier runs).
spawn_server() {
  local dir="$1"
  # setsid: the server outlives the caller's process group; fds 8/9 (locks) are not inherited.
  NO_COLOR=1 RUST_LOG="${RUST_LOG:-garage=info}" setsid "$BIN" -c "$dir/garage.toml" server \
    </dev/null >>"$dir/garage.log" 2>&1 8>&- 9>&- &
  echo "$!" >"$dir/pid"
}

# Wait until the server PID of config $CFG answers on RPC; print its ID@ADDR.
wait_node_id() {
  local pid="$1" node i
  for i in $(seq 1 100); do
    kill -0 "$pid" 2>/dev/null || { log "garage pid $pid exited during start-up"; return 1; }
    # `node id` only reads the key file in metadata_dir; `status` asks the server over RPC.
    if g status >/dev/null 2>&1 && node="$(g node id -q 2>/dev/null)" && [ -n "$node" ]; then
      printf '%s\n' "$node"
      return 0
    fi
    sleep 0.2
  done
  log "garage pid $pid did not answer on RPC within 20 s"
  return 1
}

# Wait until ADMIN/health of server PID says WANT (healthy, or by default healthy or
# degraded: quorum for every partition).
wait_health() {
  local admin="$1" pid="$2" want="${3:-}" h i
  for i in $(seq 1 100); do
    h="$(health "$admin")"
    case "$h" in healthy) return 0 ;; degraded) [ -n "$want" ] || return 0 ;; esac
    kill -0 "$pid" 2>/dev/null || { log "garage pid $pid exited"; return 1; }
    sleep 0.2
  done
  log "$admin/health still says $h after 20 s"
  return 1
}

# Create the access key NAME through $CFG; print "KEY_ID SECRET".
create_key() {
  local keyinfo key_id secret_key
  keyinfo="$(g key create "$1")" || return 1
  key_id="$(printf '%s\n' "$keyinfo" | sed -n 's/^Key ID:[[:space:]]*//p' | head -n1)"
  secret_key="$(printf '%s\n' "$keyinfo" | sed -n 's/^Secret key:[[:space:]]*//p' | head -n1)"
  [ -n "$key_id" ] && [ -n "$secret_key" ] \
    || { log "cannot parse 'garage key create' output"; return 1; }
  printf '%s %s\n' "$key_id" "$secret_key"
}

# Bucket NAME (created through $CFG unless present) with read/write/owner for KEY_ID and
# the permissive CORS rule (PutBucketCors through the S3 API of ENV_FILE, for browser tests).
grant_bucket() {
  local name="$1" key_id="$2" env_file="$3"
  if ! g bucket info "$name" >/dev/null 2>&1; then
    g bucket create "$name" >/dev/null || { log "bucket create $name"; return 1; }
  fi
  g bucket allow --read --write --owner "$name" --key "$key_id" >/dev/null \
    || { log "bucket allow $name"; return 1; }
  python3 "$S3SIG" --env-file "$env_file" put-cors "$name" >/dev/null \
    || { log "PutBucketCors on $name"; return 1; }
}

# --- start / stop --------------------------------------------------------------------------

# Serialise commands on one state directory; the cluster has its own lock (.cluster.lock) so
# that its slow commands (check) do not hold up the single server's.
lock_state() {
  mkdir -p "$STATE"
  exec 9>"$STATE/${1:-.lock}"
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
  local ports s3_port rpc_port admin_port admin_token
  ports="$(pick_ports 3900 3901 3903)"
  read -r s3_port rpc_port admin_port <<<"$ports"
  admin_token="$(random_hex 24)"
  write_config "$CFG" "$dir" "$s3_port" "$rpc_port" "$admin_port" "$(random_hex 32)" \
    "$admin_token" 1

  spawn_server "$dir"
  local pid
  pid="$(cat "$dir/pid")"
  log "garage pid $pid, S3 127.0.0.1:$s3_port, RPC :$rpc_port, admin :$admin_port ($dir)"

  fail() {
    log "error: $*"
    log "last lines of $dir/garage.log:"
    tail -n 30 "$dir/garage.log" >&2 || true
    kill_pid "$pid"
    rm -rf "$dir"
    exit 1
  }

  local node
  node="$(wait_node_id "$pid")" || fail "no RPC"
  node="${node%%@*}"

  g layout assign -z dc1 -c 1G "$node" >/dev/null || fail "layout assign"
  g layout apply --version 1 >/dev/null || fail "layout apply"
  wait_health "http://127.0.0.1:$admin_port" "$pid" || fail "cluster not healthy"

  local keys key_id secret_key
  keys="$(create_key "$KEY_NAME")" || fail "key create"
  read -r key_id secret_key <<<"$keys"

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
  grant_bucket "$BUCKET" "$key_id" "$tmp" || fail "bucket $BUCKET"

  mv "$tmp" "$ENV_FILE"
  cat "$ENV_FILE"
}

cmd_bucket() {
  local name="${1:-}"
  [ -n "$name" ] || die "usage: garage.sh bucket NAME"
  lock_state
  running || die "no garage running (scripts/garage.sh start)"
  CFG="$(env_get ISEC_GARAGE_CONFIG)"
  grant_bucket "$name" "$(env_get ISEC_S3_ACCESS_KEY_ID)" "$ENV_FILE" || die "bucket $name"
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

# --- cluster -------------------------------------------------------------------------------
#
# Three nodes on loopback, one zone each (dc1-dc3), replication_factor = 3: every object and
# every metadata partition has a copy on every node. consistency_mode is left at Garage 2.5's
# default, "consistent": read quorum ceil(3/2) = 2, write quorum 3 + 1 - 2 = 2. So with one
# node down reads and writes still succeed (2 of 3 answer), and a read through any node sees
# the last acknowledged write (2 + 2 > 3); with two down every request fails.

cnode_dir() { printf '%s/node%s' "$CLUSTER" "$1"; }

# The garage CLI against node N's RPC.
gn() {
  local CFG
  CFG="$(cnode_dir "$1")/garage.toml"
  shift
  g "$@"
}

cenv_get() { env_get "$1" "$CLUSTER_ENV"; }

check_node_index() {
  case "${1:-}" in 1 | 2 | 3) ;; *) die "node index must be 1, 2 or 3, not '${1:-}'" ;; esac
}

cnode_pid() { cat "$(cnode_dir "$1")/pid" 2>/dev/null; }

cnode_answering() {
  local n="$1"
  answering "$(cnode_pid "$n")" "$(cnode_dir "$n")/garage.toml" \
    "$(cenv_get "ISEC_GARAGE_NODE${n}_S3")" "$(cenv_get "ISEC_GARAGE_NODE${n}_ADMIN")"
}

cluster_running() {
  [ -f "$CLUSTER_ENV" ] || return 1
  local n
  for n in $CLUSTER_NODES; do cnode_answering "$n" || return 1; done
}

# Stop every node recorded under $CLUSTER (and any whose directory was removed under it).
cluster_cleanup() {
  local n pid waits=()
  for n in $CLUSTER_NODES; do
    pid="$(cnode_pid "$n")" || continue
    if is_our_server "$pid" "$(cnode_dir "$n")/garage.toml"; then
      log "stopping cluster node $n (pid $pid)"
      # In parallel: each takes 2-3 s to shut down.
      kill_pid "$pid" &
      waits+=("$!")
    fi
  done
  [ "${#waits[@]}" = 0 ] || wait "${waits[@]}"
  kill_leftovers "$CLUSTER/node*/garage.toml"
  rm -rf "$CLUSTER"
}

# The node PIDs in the env file follow the pid files (node-start gives a node a new pid).
cluster_env_update_pids() {
  local n pids="" sed_args=()
  for n in $CLUSTER_NODES; do
    pids="${pids:+$pids,}$(cnode_pid "$n")"
    sed_args+=(-e "s/^ISEC_GARAGE_NODE${n}_PID=.*/ISEC_GARAGE_NODE${n}_PID=$(cnode_pid "$n")/")
  done
  sed "${sed_args[@]}" -e "s/^ISEC_GARAGE_CLUSTER_PIDS=.*/ISEC_GARAGE_CLUSTER_PIDS=$pids/" \
    "$CLUSTER_ENV" >"$CLUSTER_ENV.tmp"
  chmod 600 "$CLUSTER_ENV.tmp"
  mv "$CLUSTER_ENV.tmp" "$CLUSTER_ENV"
}

# Wait until node N serves a signed ListObjectsV2 of the cluster bucket with the cluster key
# (its S3 API is up, it has the layout and reaches a read quorum); ENV_FILE defaults to the
# cluster's.
wait_node_s3() {
  local n="$1" env_file="${2:-$CLUSTER_ENV}" s3 i
  s3="$(env_get "ISEC_GARAGE_NODE${n}_S3" "$env_file")"
  for i in $(seq 1 150); do
    python3 "$S3SIG" --env-file "$env_file" --endpoint "$s3" list "$CLUSTER_BUCKET" \
      >/dev/null 2>&1 && return 0
    kill -0 "$(cnode_pid "$n")" 2>/dev/null || { log "node $n exited"; return 1; }
    sleep 0.2
  done
  log "node $n did not answer S3 on $s3 within 30 s"
  return 1
}

cluster_start() {
  lock_state .cluster.lock
  if cluster_running; then
    log "reusing running garage cluster (pids $(cenv_get ISEC_GARAGE_CLUSTER_PIDS))"
    return 0
  fi
  # Whatever is recorded is dead, partly down or half set up: start over.
  cluster_cleanup
  bin_ok || cmd_install

  mkdir -p "$CLUSTER"
  local ports secret admin_token n i
  # Node N: S3 3907+3N, RPC 3908+3N, admin 3909+3N (3910-3918).
  ports="$(pick_ports $(seq 3910 3918))"
  read -r -a ports <<<"$ports"
  secret="$(random_hex 32)"
  admin_token="$(random_hex 24)"
  local -a s3_url admin_url pid
  for n in $CLUSTER_NODES; do
    i=$((3 * (n - 1)))
    s3_url[n]="http://127.0.0.1:${ports[i]}"
    admin_url[n]="http://127.0.0.1:${ports[i + 2]}"
    write_config "$(cnode_dir "$n")/garage.toml" "$(cnode_dir "$n")" "${ports[i]}" \
      "${ports[i + 1]}" "${ports[i + 2]}" "$secret" "$admin_token" 3
    spawn_server "$(cnode_dir "$n")"
    pid[n]="$(cnode_pid "$n")"
    log "cluster node $n: pid ${pid[n]}, S3 :${ports[i]}, RPC :${ports[i + 1]}," \
      "admin :${ports[i + 2]}"
  done

  cluster_fail() {
    log "error: $*"
    local n
    for n in $CLUSTER_NODES; do
      log "last lines of $(cnode_dir "$n")/garage.log:"
      tail -n 15 "$(cnode_dir "$n")/garage.log" >&2 || true
    done
    cluster_cleanup
    exit 1
  }

  local -a node_id
  for n in $CLUSTER_NODES; do
    node_id[n]="$(CFG="$(cnode_dir "$n")/garage.toml" wait_node_id "${pid[n]}")" \
      || cluster_fail "node $n: no RPC"
  done
  # A restarted node reconnects only to the peers in its config's bootstrap_peers or in the
  # peer list it saves every 60 s (empty in a young cluster); other nodes retry a lost peer
  # every 30 s. So each config names the other two: node-start rejoins at once.
  local m peers
  for n in $CLUSTER_NODES; do
    peers=""
    for m in $CLUSTER_NODES; do
      [ "$m" = "$n" ] || peers="${peers:+$peers, }\"${node_id[m]}\""
    done
    sed -i "/^rpc_secret = /a bootstrap_peers = [$peers]" "$(cnode_dir "$n")/garage.toml"
  done
  # Node 1 learns of the others now; Garage's peering then connects every pair.
  for n in 2 3; do
    gn 1 node connect "${node_id[n]}" >/dev/null || cluster_fail "node connect ${node_id[n]}"
  done
  for n in $CLUSTER_NODES; do
    gn 1 layout assign -z "dc$n" -c 1G "${node_id[n]%%@*}" >/dev/null \
      || cluster_fail "layout assign node $n"
  done
  gn 1 layout apply --version 1 >/dev/null || cluster_fail "layout apply"
  # "healthy" on every node: each sees all three up with the applied layout.
  for n in $CLUSTER_NODES; do
    wait_health "${admin_url[n]}" "${pid[n]}" healthy || cluster_fail "node $n not healthy"
  done

  local keys key_id secret_key
  keys="$(CFG="$(cnode_dir 1)/garage.toml" create_key "$CLUSTER_KEY_NAME")" \
    || cluster_fail "key create"
  read -r key_id secret_key <<<"$keys"

  local tmp="$CLUSTER/env.tmp"
  {
    echo "ISEC_S3_ENDPOINTS=${s3_url[1]},${s3_url[2]},${s3_url[3]}"
    echo "ISEC_S3_ENDPOINT=${s3_url[1]}"
    echo "ISEC_S3_REGION=$REGION"
    echo "ISEC_S3_BUCKET=$CLUSTER_BUCKET"
    echo "ISEC_S3_ACCESS_KEY_ID=$key_id"
    echo "ISEC_S3_SECRET_ACCESS_KEY=$secret_key"
    echo "ISEC_S3_ADMIN=${admin_url[1]}"
    echo "ISEC_S3_METRICS=${admin_url[1]}/metrics"
    echo "ISEC_GARAGE_ADMIN_TOKEN=$admin_token"
    echo "ISEC_GARAGE_CLUSTER_DIR=$CLUSTER"
    echo "ISEC_GARAGE_CLUSTER_PIDS=${pid[1]},${pid[2]},${pid[3]}"
    for n in $CLUSTER_NODES; do
      echo "ISEC_GARAGE_NODE${n}_PID=${pid[n]}"
      echo "ISEC_GARAGE_NODE${n}_CONFIG=$(cnode_dir "$n")/garage.toml"
      echo "ISEC_GARAGE_NODE${n}_S3=${s3_url[n]}"
      echo "ISEC_GARAGE_NODE${n}_ADMIN=${admin_url[n]}"
    done
    echo "ISEC_GARAGE_BIN=$BIN"
  } >"$tmp"
  chmod 600 "$tmp"
  CFG="$(cnode_dir 1)/garage.toml" grant_bucket "$CLUSTER_BUCKET" "$key_id" "$tmp" \
    || cluster_fail "bucket $CLUSTER_BUCKET"
  # Bucket and key are in tables replicated on all three: wait until each node serves them.
  for n in $CLUSTER_NODES; do
    wait_node_s3 "$n" "$tmp" || cluster_fail "node $n does not serve $CLUSTER_BUCKET"
  done
  mv "$tmp" "$CLUSTER_ENV"
  log "cluster ready: $(env_get ISEC_S3_ENDPOINTS "$CLUSTER_ENV"), bucket $CLUSTER_BUCKET"
}

# Does node M count node ID as up (admin GetClusterStatus)? Prints up, down or unknown.
peer_state() {
  python3 - "$(cenv_get "ISEC_GARAGE_NODE${1}_ADMIN")/v2/GetClusterStatus" \
    "$(cenv_get ISEC_GARAGE_ADMIN_TOKEN)" "$2" <<'EOF'
import json, sys, urllib.request
req = urllib.request.Request(sys.argv[1], headers={"Authorization": "Bearer " + sys.argv[2]})
try:
    with urllib.request.urlopen(req, timeout=5) as r:
        nodes = json.load(r)["nodes"]
    print(next(("up" if n["isUp"] else "down") for n in nodes if n["id"] == sys.argv[3]))
except Exception:
    print("unknown")
EOF
}

is_cluster_node_running() { is_our_server "$(cnode_pid "$1")" "$(cnode_dir "$1")/garage.toml"; }

# Make every running node drop its connection to the stopped node N. Garage notices a dead
# peer only when a send on that connection fails (a ping every 15 s, two to fail), and
# until then sends it requests that hang for seconds and, once it restarts, fail on the old
# connection. A write through node M (re-granting the same bucket permission, invisible to
# tests) sends to every replica, N included, so M finds the connection broken.
cluster_notice_down() {
  local n="$1" id m i waits=()
  id="$(gn "$n" node id -q 2>/dev/null)" || return 0
  id="${id%%@*}"
  # Each write takes a few seconds (the send to N hangs until it fails): both nodes at once.
  for m in $CLUSTER_NODES; do
    [ "$m" != "$n" ] && is_cluster_node_running "$m" || continue
    (
      for i in $(seq 1 10); do
        [ "$(peer_state "$m" "$id")" = up ] || exit 0
        gn "$m" bucket allow --read --write --owner "$CLUSTER_BUCKET" \
          --key "$(cenv_get ISEC_S3_ACCESS_KEY_ID)" >/dev/null 2>&1 || true
      done
      [ "$(peer_state "$m" "$id")" != up ] || log "node $m still counts node $n as up"
    ) &
    waits+=("$!")
  done
  [ "${#waits[@]}" = 0 ] || wait "${waits[@]}"
}

cluster_node_stop() {
  local n="$1" pid
  check_node_index "$n"
  [ -f "$CLUSTER_ENV" ] || die "no cluster (scripts/garage.sh cluster start)"
  pid="$(cnode_pid "$n")" || true
  if is_our_server "$pid" "$(cnode_dir "$n")/garage.toml"; then
    log "stopping cluster node $n (pid $pid)"
    kill_pid "$pid"
    ! kill -0 "$pid" 2>/dev/null || die "node $n (pid $pid) did not stop"
  else
    log "cluster node $n is not running"
  fi
  cluster_notice_down "$n"
}

cluster_node_start() {
  local n="$1" dir pid id m want
  check_node_index "$n"
  [ -f "$CLUSTER_ENV" ] || die "no cluster (scripts/garage.sh cluster start)"
  dir="$(cnode_dir "$n")"
  pid="$(cnode_pid "$n")" || true
  if is_our_server "$pid" "$dir/garage.toml"; then
    log "cluster node $n already running (pid $pid)"
  else
    # Killed some other way, the others may still hold a connection to its old process.
    cluster_notice_down "$n"
    # Same config, same node key and data: the node rejoins with its old identity and role.
    spawn_server "$dir"
    cluster_env_update_pids
    pid="$(cnode_pid "$n")"
    log "cluster node $n restarted: pid $pid"
  fi
  node_fail() {
    log "error: node $n: $*"
    tail -n 30 "$dir/garage.log" >&2 || true
    exit 1
  }
  id="$(CFG="$dir/garage.toml" wait_node_id "$pid")" || node_fail "no RPC"
  # The restarted node dials its bootstrap_peers at once, but requests from another node
  # go out on that node's own connection, which it redials only every 30 s: ask it now.
  want=healthy
  for m in $CLUSTER_NODES; do
    [ "$m" != "$n" ] || continue
    if is_cluster_node_running "$m"; then
      gn "$m" node connect "$id" >/dev/null || node_fail "node $m cannot connect to it"
    else
      want=""  # a node is down on purpose: degraded is the best to expect
    fi
  done
  for m in $CLUSTER_NODES; do
    if is_cluster_node_running "$m"; then
      wait_health "$(cenv_get "ISEC_GARAGE_NODE${m}_ADMIN")" "$(cnode_pid "$m")" $want \
        || node_fail "node $m does not see the cluster ${want:-with quorum}"
    fi
  done
  wait_node_s3 "$n" || node_fail "no S3"
}

cluster_check() {
  cluster_running || die "no garage cluster running (scripts/garage.sh cluster start)"
  local tmp e1 e2 e3 k1 k2 checks=0
  tmp="$(mktemp -d)"
  e1="$(cenv_get ISEC_GARAGE_NODE1_S3)"
  e2="$(cenv_get ISEC_GARAGE_NODE2_S3)"
  e3="$(cenv_get ISEC_GARAGE_NODE3_S3)"
  k1="cluster-check-$$-$(random_hex 3)/all-up"
  k2="${k1%/*}/node3-down"
  s3() { python3 "$S3SIG" --env-file "$CLUSTER_ENV" --endpoint "$@"; }
  ok() { checks=$((checks + 1)); echo "ok   $*"; }
  check_fail() {
    log "error: cluster check: $*"
    # Leave the cluster as found: node 3 back up.
    (cluster_node_start 3) || true
    rm -rf "$tmp"
    exit 1
  }

  # 3 MiB: several 1 MiB blocks, each replicated to the three nodes.
  head -c $((3 * 1024 * 1024 + 777)) /dev/urandom >"$tmp/a"
  head -c 100000 /dev/urandom >"$tmp/b"
  s3 "$e1" put "$CLUSTER_BUCKET" "$k1" <"$tmp/a" || check_fail "put through node 1"
  s3 "$e2" get "$CLUSTER_BUCKET" "$k1" >"$tmp/a2" && cmp -s "$tmp/a" "$tmp/a2" \
    || check_fail "read through node 2 of an object written through node 1"
  ok "an object written through node 1 reads back whole through node 2"
  s3 "$e3" get "$CLUSTER_BUCKET" "$k1" >"$tmp/a3" && cmp -s "$tmp/a" "$tmp/a3" \
    || check_fail "read through node 3 of an object written through node 1"
  ok "... and through node 3"

  cluster_node_stop 3
  ! kill -0 "$(cenv_get ISEC_GARAGE_NODE3_PID)" 2>/dev/null || check_fail "node 3 still runs"
  s3 "$e1" put "$CLUSTER_BUCKET" "$k2" <"$tmp/b" || check_fail "put with node 3 down"
  s3 "$e1" get "$CLUSTER_BUCKET" "$k2" >"$tmp/b1" && cmp -s "$tmp/b" "$tmp/b1" \
    || check_fail "get with node 3 down"
  ok "with node 3 stopped, put and get through node 1 work (quorum 2 of 3)"
  s3 "$e2" get "$CLUSTER_BUCKET" "$k1" >"$tmp/a2" && cmp -s "$tmp/a" "$tmp/a2" \
    || check_fail "earlier object through node 2 with node 3 down"
  ok "with node 3 stopped, the earlier object reads through node 2"
  if s3 "$e3" list "$CLUSTER_BUCKET" >/dev/null 2>&1; then
    check_fail "node 3's S3 endpoint still answers after node-stop"
  fi
  ok "node 3's endpoint is down"

  cluster_node_start 3
  s3 "$e3" get "$CLUSTER_BUCKET" "$k2" >"$tmp/b3" && cmp -s "$tmp/b" "$tmp/b3" \
    || check_fail "read through restarted node 3 of the object written while it was down"
  ok "node 3 restarted: it serves the object written while it was down"

  s3 "$e1" delete "$CLUSTER_BUCKET" "$k1" && s3 "$e1" delete "$CLUSTER_BUCKET" "$k2" \
    || check_fail "delete"
  rm -rf "$tmp"
  echo "garage cluster check OK: $checks checks"
}

cmd_cluster() {
  local sub="${1:-}"
  shift || true
  case "$sub" in
    start) cluster_start ;;
    env)
      [ -f "$CLUSTER_ENV" ] || die "no cluster env file: run scripts/garage.sh cluster start"
      if [ "${1:-}" = "--export" ]; then
        sed 's/^/export /' "$CLUSTER_ENV"
      else
        cat "$CLUSTER_ENV"
      fi
      ;;
    status)
      if cluster_running; then
        log "cluster running: pids $(cenv_get ISEC_GARAGE_CLUSTER_PIDS)"
      else
        log "cluster not running (or not every node answers)"
        return 1
      fi
      ;;
    bucket)
      local name="${1:-}"
      [ -n "$name" ] || die "usage: garage.sh cluster bucket NAME"
      lock_state .cluster.lock
      cluster_running || die "no garage cluster running (scripts/garage.sh cluster start)"
      CFG="$(cnode_dir 1)/garage.toml" grant_bucket "$name" "$(cenv_get ISEC_S3_ACCESS_KEY_ID)" \
        "$CLUSTER_ENV" || die "bucket $name"
      log "cluster bucket $name ready"
      ;;
    node-stop) lock_state .cluster.lock; cluster_node_stop "${1:-}" ;;
    node-start) lock_state .cluster.lock; cluster_node_start "${1:-}" ;;
    check) lock_state .cluster.lock; cluster_check ;;
    stop) lock_state .cluster.lock; cluster_cleanup ;;
    *)
      die "usage: garage.sh cluster" \
        "start|env [--export]|status|bucket NAME|node-stop N|node-start N|check|stop"
      ;;
  esac
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
    cluster) shift; cmd_cluster "$@" ;;
    *)
      sed -n '2,/^set -euo/p' "${BASH_SOURCE[0]}" | sed '$d; s/^# \{0,1\}//' >&2
      exit 2
      ;;
  esac
}

# One line, parsed whole before it runs: editing this file during a long install is safe.
main "$@"; exit $?
