#!/usr/bin/env bash
# `isec gateway` against the S3 clients people actually use: the AWS CLI (v1), boto3, s3cmd,
# rclone and the JS SDK v3 talk plain S3 to a gateway in front of Garage on 127.0.0.1
# (scripts/garage.sh). Each checks what it can see (bytes, sizes, ETags, ranges, listings,
# errors) and the backend is checked directly: it holds ciphertext only, the Python and Node
# helpers read what the gateway wrote and the other way round, copies stay on the server
# (Garage's request counters), deletes take the segment-table sidecars along, and failed or
# abandoned uploads leave nothing.
#
# Run by scripts/test-all.sh after the Python and Node packages are built: it uses
# bindings-py/.venv (the isec wheel, boto3, pytest) and bindings-node (node_modules with
# @aws-sdk/client-s3). It installs what is missing of the AWS CLI and s3cmd (into that venv,
# so botocore matches boto3) and rclone (Debian's package). A server already running is used
# as it is; otherwise this script starts one and stops it on exit. Objects go under a fresh
# prefix of bucket isec-gw and are deleted at the end. About 2 minutes on 2 cores.
#
#   bash scripts/test-gateway.sh
#   ISEC_BIN=/path/to/isec bash scripts/test-gateway.sh   # another isec binary (default
#                                                         # target/debug/isec, built if absent)
set -euo pipefail
cd "$(dirname "$0")/.."
repo=$PWD
export PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_NO_INPUT=1 PYTHONDONTWRITEBYTECODE=1
start_time=$SECONDS

step() { printf '\n--> %s\n' "$*"; }

venv=$repo/bindings-py/.venv
py=$venv/bin/python
[ -x "$py" ] || { echo "$py missing: run bash scripts/test-python.sh first" >&2; exit 1; }
[ -d bindings-node/node_modules/@aws-sdk/client-s3 ] ||
  { echo "bindings-node is not built: run bash scripts/test-node.sh first" >&2; exit 1; }
ISEC_BIN=${ISEC_BIN:-target/debug/isec}
[ -x "$ISEC_BIN" ] || cargo build -q -p isec-cli
ISEC_BIN=$(realpath "$ISEC_BIN")

# --- what this script starts, stopped on exit -------------------------------------------------

started_garage=0
gw_pid=
tmp=
run=
stop_gateway() {
  # SIGTERM is the documented way to stop it: it must finish within 10 s and exit 0.
  local pid=$gw_pid i rc
  gw_pid=
  [ -n "$pid" ] || return 0
  kill -TERM "$pid" 2>/dev/null || true
  for i in $(seq 1 100); do
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.1
  done
  if kill -0 "$pid" 2>/dev/null; then
    echo "the gateway did not stop within 10 s of SIGTERM" >&2
    kill -KILL "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
    return 1
  fi
  rc=0
  wait "$pid" || rc=$?
  if [ "$rc" -ne 0 ]; then
    echo "the gateway exited $rc after SIGTERM; its stderr:" >&2
    tail -n 20 "$tmp/gateway.err" >&2 || true
    return 1
  fi
}
cleanup() {
  local rc=$?
  stop_gateway || rc=1
  if [ -n "$run" ]; then
    "$py" tests/gateway/gwtool.py backend-clean "$run/" >/dev/null 2>&1 || true
    "$py" tests/gateway/gwtool.py backend-clean ".s3proxy-internal/$run/" >/dev/null 2>&1 || true
  fi
  [ -z "$tmp" ] || rm -rf "$tmp"
  [ "$started_garage" = 0 ] || bash scripts/garage.sh stop </dev/null || true
  exit "$rc"
}
trap cleanup EXIT

if bash scripts/garage.sh status </dev/null >/dev/null 2>&1; then
  echo "using the running server"
else
  started_garage=1
  bash scripts/garage.sh start </dev/null >/dev/null
fi
bucket=isec-gw
bash scripts/garage.sh bucket "$bucket" </dev/null
set -a
# shellcheck disable=SC1091
. "${ISEC_GARAGE_STATE:-target/garage}/env"
set +a
export GW_BUCKET=$bucket

# --- clients ---------------------------------------------------------------------------------

step "clients: AWS CLI and s3cmd in $venv, rclone, @aws-sdk/client-s3"
if ! "$py" -c 'import awscli, S3' 2>/dev/null; then
  "$venv/bin/pip" install -q "awscli>=1.29,<2" "s3cmd>=2.3"
fi
# rclone is not on PyPI: Debian's package (sudo only when not root).
if ! command -v rclone >/dev/null 2>&1; then
  sudo=; [ "$(id -u)" = 0 ] || sudo="sudo -n"
  apt_get() { $sudo env DEBIAN_FRONTEND=noninteractive apt-get "$@" </dev/null >/dev/null; }
  apt_get install -y -q rclone || { apt_get update -q && apt_get install -y -q rclone; }
fi
# No user configuration of any client: only what this script sets.
export AWS_CONFIG_FILE=/dev/null AWS_SHARED_CREDENTIALS_FILE=/dev/null
unset AWS_PROFILE AWS_SESSION_TOKEN AWS_ENDPOINT_URL AWS_DEFAULT_PROFILE
# rclone refuses to start with a CA bundle variable set (all traffic here is plain HTTP).
unset AWS_CA_BUNDLE
printf '%s\n' "aws $("$venv/bin/aws" --version 2>&1)" "s3cmd $("$py" "$venv/bin/s3cmd" --version 2>&1)" \
  "$(rclone version 2>/dev/null | head -n1)" "node $(node --version)"

tmp=$(mktemp -d)
run="run-$(date +%s)-$$"
export GW_PREFIX=$run GW_TMP=$tmp
MiB=1048576

# --- the gateway -----------------------------------------------------------------------------

step "gateway: its own keyring and client credentials, on a free port"
export GW_KEYRING=$tmp/ring.json
"$ISEC_BIN" --keyring "$GW_KEYRING" keygen --kid gw-kek >/dev/null
export GW_ACCESS_KEY="gw-$run" GW_SECRET_KEY
GW_SECRET_KEY=$(head -c 24 /dev/urandom | od -An -tx1 | tr -d ' \n')
# The gateway reaches Garage with the AWS SDK's default chain; clients sign with their own key.
AWS_ACCESS_KEY_ID=$ISEC_S3_ACCESS_KEY_ID AWS_SECRET_ACCESS_KEY=$ISEC_S3_SECRET_ACCESS_KEY \
  AWS_REGION=$ISEC_S3_REGION ISEC_GATEWAY_ACCESS_KEY=$GW_ACCESS_KEY ISEC_GATEWAY_SECRET_KEY=$GW_SECRET_KEY \
  "$ISEC_BIN" --keyring "$GW_KEYRING" gateway --listen 127.0.0.1:0 --endpoint-url "$ISEC_S3_ENDPOINT" \
  >"$tmp/gateway.out" 2>"$tmp/gateway.err" </dev/null &
gw_pid=$!
for _ in $(seq 1 100); do
  GW=$(sed -n 's/^isec gateway on \(http:[^ ]*\)$/\1/p' "$tmp/gateway.out")
  [ -z "$GW" ] || break
  kill -0 "$gw_pid" 2>/dev/null || { cat "$tmp/gateway.err" >&2; exit 1; }
  sleep 0.1
done
[ -n "$GW" ] || { echo "the gateway did not say where it listens" >&2; exit 1; }
gw_hostport=${GW#http://}
export GW_ENDPOINT=$GW
export AWS_ACCESS_KEY_ID=$GW_ACCESS_KEY AWS_SECRET_ACCESS_KEY=$GW_SECRET_KEY AWS_REGION=$ISEC_S3_REGION
export AWS_DEFAULT_REGION=$ISEC_S3_REGION
echo "gateway $GW (pid $gw_pid), prefix s3://$bucket/$run/"

step "test files: 0, 1, 65536, 65537 bytes, 3 MB, 30 MiB, 100 MiB"
mkdir -p "$tmp/files" "$tmp/back"
sizes="0 1 65536 65537 3000000"
for n in $sizes; do head -c "$n" /dev/urandom >"$tmp/files/f$n"; done
export GW_BIG=$tmp/files/big
head -c $((100 * MiB)) /dev/urandom >"$GW_BIG"
head -c $((30 * MiB)) "$GW_BIG" >"$tmp/files/f30m"
export GW_FILES=$tmp/files

# --- checks ----------------------------------------------------------------------------------

passed=()
failed=()
# check "what" CMD ARGS...: runs CMD in a subshell under errexit (a check stops at its first
# failing command) and records the outcome; its output is shown only when it fails.
check() {
  local what=$1 rc
  shift
  set +e
  (set -e; "$@") >"$tmp/check.log" 2>&1
  rc=$?
  set -e
  if [ "$rc" -eq 0 ]; then
    passed+=("$what")
    printf '  ok    %s\n' "$what"
  else
    failed+=("$what")
    printf '  FAIL  %s\n' "$what"
    tail -n 40 "$tmp/check.log" | sed 's/^/        /'
  fi
}
fail() { echo "$*" >&2; return 1; }
expect_eq() { [ "$2" = "$3" ] || fail "$1: got '$2', want '$3'"; }

gwtool() { "$py" "$repo/tests/gateway/gwtool.py" "$@"; }
awsgw() { "$venv/bin/aws" --endpoint-url "$GW" "$@"; }
head_etag() { awsgw s3api head-object --bucket "$bucket" --key "$1" --query ETag --output text | tr -d '"'; }
head_size() { awsgw s3api head-object --bucket "$bucket" --key "$1" --query ContentLength --output text; }
rcl() { rclone --config /dev/null --low-level-retries 1 --retries 1 "$@"; }
export RCLONE_CONFIG_GW_TYPE=s3 RCLONE_CONFIG_GW_PROVIDER=Other RCLONE_CONFIG_GW_ENDPOINT=$GW
export RCLONE_CONFIG_GW_ACCESS_KEY_ID=$GW_ACCESS_KEY RCLONE_CONFIG_GW_SECRET_ACCESS_KEY=$GW_SECRET_KEY
export RCLONE_CONFIG_GW_REGION=$ISEC_S3_REGION RCLONE_CONFIG_GW_FORCE_PATH_STYLE=true
s3cfg=$tmp/s3cfg
cat >"$s3cfg" <<EOF
[default]
access_key = $GW_ACCESS_KEY
secret_key = $GW_SECRET_KEY
host_base = $gw_hostport
host_bucket = $gw_hostport
use_https = False
bucket_location = $ISEC_S3_REGION
signature_v2 = False
EOF
s3c() { "$py" "$venv/bin/s3cmd" -c "$s3cfg" --no-progress "$@"; }

# Uploads with CLIENT (put CMD...), downloads (get CMD...) and compares, then checks the size
# and ETag the gateway reports.
roundtrip() {
  local key=$1 src=$2 back=$3 part=$4
  cmp "$src" "$back"
  expect_eq "$key size" "$(head_size "$key")" "$(stat -c %s "$src")"
  expect_eq "$key ETag" "$(head_etag "$key")" "$(gwtool etag "$src" "$part")"
}

# A copy through the gateway must stay on the backend: Garage counts a CopyObject (or
# UploadPartCopy) and no GetObject, PutObject or UploadPart. The counters are the whole
# server's, shared with any other client of it: when something else moved them meanwhile the
# copy is measured again, to a new destination (a client may skip a copy whose destination
# already matches); the gateway's own reads or writes would move them every time.
#   server_side_copy WHAT SRC_FILE DST_KEY BACK_FILE CMD...   (@DST@ in CMD: the destination key)
server_side_copy() {
  local what=$1 src=$2 dst=$3 back=$4
  shift 4
  local attempt before after moved key a cmd
  for attempt in 1 2 3 4 5 6 7 8; do
    key="$dst-$attempt"
    cmd=()
    for a in "$@"; do cmd+=("${a//@DST@/$key}"); done
    before=$(gwtool counters)
    "${cmd[@]}" >/dev/null
    after=$(gwtool counters)
    moved=$(gwtool moved "$before" "$after")
    echo "attempt $attempt of $what: $(tr '\n' ' ' <<<"$moved")"
    grep -Eq '^(CopyObject|UploadPartCopy) \+' <<<"$moved" || fail "$what: no CopyObject on the backend"
    grep -Eq '^(GetObject|PutObject|UploadPart) \+' <<<"$moved" || break
    [ "$attempt" -lt 8 ] || fail "$what: bytes went through the gateway: $moved"
    sleep 0.5
  done
  awsgw s3 cp --only-show-errors "s3://$bucket/$key" "$back"
  cmp "$src" "$back"
}

# --- AWS CLI ---------------------------------------------------------------------------------

step "AWS CLI $("$venv/bin/aws" --version 2>&1 | cut -d' ' -f1)"
aws_rt() {
  local n=$1 key="$run/aws/f$1"
  awsgw s3 cp --only-show-errors "$tmp/files/f$n" "s3://$bucket/$key"
  awsgw s3 cp --only-show-errors "s3://$bucket/$key" "$tmp/back/aws-f$n"
  roundtrip "$key" "$tmp/files/f$n" "$tmp/back/aws-f$n" 0
  gwtool backend-differs "$key" "$tmp/files/f$n"
}
for n in $sizes; do check "aws s3 cp up and down, $n bytes; size, ETag = MD5; backend holds ciphertext" aws_rt "$n"; done

aws_big() {
  local key="$run/aws/big"
  awsgw s3 cp --only-show-errors "$GW_BIG" "s3://$bucket/$key"
  awsgw s3 cp --only-show-errors "s3://$bucket/$key" "$tmp/back/aws-big"
  # The AWS CLI's default part size: 8 MiB, so 13 parts.
  roundtrip "$key" "$GW_BIG" "$tmp/back/aws-big" $((8 * MiB))
  case "$(head_etag "$key")" in *-13) ;; *) fail "not a 13-part upload" ;; esac
  rm -f "$tmp/back/aws-big"
}
check "aws s3 cp 100 MiB (multipart, 8 MiB parts) up and down; ETag = MD5 of part MD5s -13" aws_big

aws_ls() {
  local out
  out=$(awsgw s3 ls "s3://$bucket/$run/aws/")
  echo "$out"
  for n in $sizes; do
    grep -Eq "^[0-9-]+ [0-9:]+ +$n f$n\$" <<<"$out" || fail "f$n not listed with $n bytes"
  done
  grep -Eq "^[0-9-]+ [0-9:]+ +$((100 * MiB)) big\$" <<<"$out" || fail "big not listed with 100 MiB"
  ! grep -Eq 'isec-table|s3proxy-internal' <<<"$out" || fail "a sidecar is listed"
}
check "aws s3 ls: plaintext sizes" aws_ls

aws_sidecar() {
  local key="$run/aws/sidecar" id d=$tmp/parts
  mkdir -p "$d"
  # An unaligned first part (not a whole number of frames) makes the segment table too large
  # for the object's metadata: it goes to <key>.isec-table.
  head -c $((5 * MiB + 3)) "$GW_BIG" >"$d/p1"
  tail -c $((5 * MiB)) "$GW_BIG" >"$d/p2"
  head -c 1 /dev/urandom >"$d/p3"
  id=$(awsgw s3api create-multipart-upload --bucket "$bucket" --key "$key" --query UploadId --output text)
  local parts=() i e
  for i in 1 2 3; do
    e=$(awsgw s3api upload-part --bucket "$bucket" --key "$key" --upload-id "$id" --part-number "$i" \
      --body "$d/p$i" --query ETag --output text)
    parts+=("{\"PartNumber\":$i,\"ETag\":$e}")
  done
  printf '{"Parts":[%s,%s,%s]}' "${parts[@]}" >"$d/complete.json"
  awsgw s3api complete-multipart-upload --bucket "$bucket" --key "$key" --upload-id "$id" \
    --multipart-upload "file://$d/complete.json" >/dev/null
  cat "$d/p1" "$d/p2" "$d/p3" >"$d/all"
  awsgw s3 cp --only-show-errors "s3://$bucket/$key" "$d/back"
  cmp "$d/all" "$d/back"
  expect_eq "ETag" "$(head_etag "$key")" "$(gwtool etag-parts "$d/p1" "$d/p2" "$d/p3")"
  expect_eq "sidecar on the backend" "$(gwtool backend-status "$key.isec-table")" 200
  ! awsgw s3 ls "s3://$bucket/$run/aws/" | grep -q 'isec-table' || fail "the sidecar is listed"
  awsgw s3 rm --only-show-errors "s3://$bucket/$key"
  expect_eq "object on the backend after rm" "$(gwtool backend-status "$key")" 404
  expect_eq "sidecar on the backend after rm" "$(gwtool backend-status "$key.isec-table")" 404
}
check "aws s3api 3-part upload (5 MiB+3, 5 MiB, 1): sidecar table hidden; aws s3 rm removes it too" aws_sidecar

check "aws s3api copy-object stays on the backend (CopyObject only), copy reads back equal" \
  server_side_copy "aws copy-object" "$tmp/files/f3000000" "$run/aws/f3000000-copy" "$tmp/back/aws-copy" \
  awsgw s3api copy-object --bucket "$bucket" --key "@DST@" \
  --copy-source "$bucket/$run/aws/f3000000"

aws_mv() {
  # A rename below the CLI's multipart threshold: CopyObject (on the backend) and a delete.
  local key="$run/aws/mv-src"
  awsgw s3 cp --only-show-errors "$tmp/files/f3000000" "s3://$bucket/$key"
  awsgw s3 mv --only-show-errors "s3://$bucket/$key" "s3://$bucket/$run/aws/mv-dst"
  expect_eq "source after mv" "$(gwtool backend-status "$key")" 404
  awsgw s3 cp --only-show-errors "s3://$bucket/$run/aws/mv-dst" "$tmp/back/aws-mv"
  cmp "$tmp/files/f3000000" "$tmp/back/aws-mv"
}
check "aws s3 mv renames: the source is gone, the destination reads back equal" aws_mv

mkdir -p "$tmp/tree/sub"
for n in 1 65537 3000000; do cp "$tmp/files/f$n" "$tmp/tree/f$n"; done
cp "$tmp/files/f65536" "$tmp/tree/sub/f65536"
aws_sync() {
  local first second
  first=$(awsgw s3 sync --no-progress "$tmp/tree" "s3://$bucket/$run/aws-sync")
  echo "$first"
  expect_eq "first sync uploads" "$(grep -c '^upload:' <<<"$first")" 4
  second=$(awsgw s3 sync --no-progress "$tmp/tree" "s3://$bucket/$run/aws-sync")
  expect_eq "second sync" "$second" ""
  awsgw s3 sync --no-progress "s3://$bucket/$run/aws-sync" "$tmp/back/aws-sync" >/dev/null
  diff -r "$tmp/tree" "$tmp/back/aws-sync"
}
check "aws s3 sync of a directory, a second sync uploads nothing, sync back equal" aws_sync

aws_part_copy() {
  local key="$run/aws/f30m"
  # Above the CLI's 8 MiB threshold an S3-to-S3 copy is CreateMultipartUpload and
  # UploadPartCopy with source ranges, which the gateway re-encrypts part by part.
  awsgw s3 cp --only-show-errors "$tmp/files/f30m" "s3://$bucket/$key"
  awsgw s3 cp --only-show-errors "s3://$bucket/$key" "s3://$bucket/$key-copy"
  awsgw s3 cp --only-show-errors "s3://$bucket/$key-copy" "$tmp/back/aws-f30m-copy"
  roundtrip "$key-copy" "$tmp/files/f30m" "$tmp/back/aws-f30m-copy" $((8 * MiB))
}
check "aws s3 cp s3:// to s3:// of 30 MiB (UploadPartCopy of ranges) reads back equal; ETag -4" aws_part_copy

aws_stream() {
  local key="$run/aws/stdin"
  # From standard input the CLI does not know the size: multipart in 8 MiB parts as read.
  head -c 20000000 "$GW_BIG" | awsgw s3 cp --only-show-errors - "s3://$bucket/$key"
  awsgw s3 cp --only-show-errors "s3://$bucket/$key" - | cmp - <(head -c 20000000 "$GW_BIG")
  expect_eq "size" "$(head_size "$key")" 20000000
}
check "aws s3 cp from standard input (20 MB, size unknown) and to standard output" aws_stream

aws_headers() {
  local key="$run/aws/headers" out
  awsgw s3 cp --only-show-errors --content-type text/x-isec --cache-control max-age=5 \
    --content-disposition 'attachment; filename="h.txt"' --metadata team=blue,Owner=ana \
    "$tmp/files/f1" "s3://$bucket/$key"
  out=$(awsgw s3api head-object --bucket "$bucket" --key "$key" --output json \
    --query '[ContentType,CacheControl,ContentDisposition,Metadata.team,Metadata.owner]')
  expect_eq "headers" "$(tr -d ' \n' <<<"$out")" '["text/x-isec","max-age=5","attachment;filename=\"h.txt\"","blue","ana"]'
}
check "aws s3 cp keeps Content-Type, Cache-Control, Content-Disposition and user metadata" aws_headers

# Keys that URL encodings treat differently: space, '+', '%', '~', non-ASCII.
special_keys=("a b+c%41d é.txt" "~!\$&'()*,;=:@.bin" "dir é/中文 key")
aws_special_keys() {
  local k i=0
  for k in "${special_keys[@]}"; do
    awsgw s3 cp --only-show-errors "$tmp/files/f65537" "s3://$bucket/$run/aws-keys/$k"
    awsgw s3 cp --only-show-errors "s3://$bucket/$run/aws-keys/$k" "$tmp/back/aws-key$i"
    cmp "$tmp/files/f65537" "$tmp/back/aws-key$i"
    expect_eq "size of '$k'" "$(head_size "$run/aws-keys/$k")" 65537
    i=$((i + 1))
  done
}
check "aws s3 cp up and down of keys with space, +, %, ~, non-ASCII" aws_special_keys

aws_refused() {
  local out
  ! out=$(AWS_SECRET_ACCESS_KEY="x$GW_SECRET_KEY" awsgw s3 cp "$tmp/files/f1" "s3://$bucket/$run/aws/refused" 2>&1) ||
    fail "accepted with a wrong secret"
  grep -q 'SignatureDoesNotMatch' <<<"$out" || fail "wrong secret: $out"
  ! out=$(AWS_ACCESS_KEY_ID="unknown-$GW_ACCESS_KEY" awsgw s3 ls "s3://$bucket/$run/" 2>&1) ||
    fail "accepted with an unknown access key"
  # AWS answers InvalidAccessKeyId, Garage AccessDenied, s3s NotSignedUp: all refusals.
  grep -Eq '\((InvalidAccessKeyId|AccessDenied|NotSignedUp)\)' <<<"$out" || fail "unknown key: $out"
  expect_eq "refused object on the backend" "$(gwtool backend-status "$run/aws/refused")" 404
}
check "aws with a wrong secret: SignatureDoesNotMatch; with an unknown access key: refused" aws_refused

aws_special_listing() {
  local out k
  # The CLI lists with encoding-type=url and decodes what it gets.
  out=$(awsgw s3 ls --recursive "s3://$bucket/$run/aws-keys/")
  echo "$out"
  for k in "${special_keys[@]}"; do
    grep -qF " 65537 $run/aws-keys/$k" <<<"$out" || fail "'$k' not listed as it is"
  done
  awsgw s3 cp --only-show-errors --recursive "s3://$bucket/$run/aws-keys/" "$tmp/back/aws-keys/"
  for k in "${special_keys[@]}"; do cmp "$tmp/files/f65537" "$tmp/back/aws-keys/$k"; done
}
check "aws s3 ls --recursive and cp --recursive of keys with space, +, %, ~, non-ASCII" aws_special_listing

# --- rclone ----------------------------------------------------------------------------------

step "$(rclone version 2>/dev/null | head -n1)"
rclone_rt() {
  local n=$1 key="$run/rclone/f$1"
  rcl copyto "$tmp/files/f$n" "gw:$bucket/$key"
  rcl copyto "gw:$bucket/$key" "$tmp/back/rclone-f$n"
  roundtrip "$key" "$tmp/files/f$n" "$tmp/back/rclone-f$n" 0
}
for n in $sizes; do check "rclone copyto up and down, $n bytes" rclone_rt "$n"; done

rclone_multipart() {
  local key="$run/rclone/f30m"
  rcl copyto --s3-chunk-size 16M --s3-upload-cutoff 16M "$tmp/files/f30m" "gw:$bucket/$key"
  rcl cat "gw:$bucket/$key" >"$tmp/back/rclone-f30m"
  roundtrip "$key" "$tmp/files/f30m" "$tmp/back/rclone-f30m" $((16 * MiB))
}
check "rclone 30 MiB multipart (--s3-chunk-size 16M) up, cat back; ETag -2" rclone_multipart

check "rclone copyto within the gateway stays on the backend, copy reads back equal" \
  server_side_copy "rclone copyto" "$tmp/files/f65537" "$run/rclone/f65537-copy" "$tmp/back/rclone-copy" \
  rcl copyto "gw:$bucket/$run/rclone/f65537" "gw:$bucket/@DST@"

rclone_check() {
  rcl copy "$tmp/tree" "gw:$bucket/$run/rclone-tree"
  rcl check --download "$tmp/tree" "gw:$bucket/$run/rclone-tree"
  # The same check must see one changed byte (same size, so only the contents tell).
  cp -r "$tmp/tree" "$tmp/tree2"
  printf 'X' | dd of="$tmp/tree2/f65537" bs=1 seek=1000 conv=notrunc status=none
  ! rcl check --download "$tmp/tree2" "gw:$bucket/$run/rclone-tree" || fail "rclone check missed a changed byte"
}
check "rclone check --download: equal tree passes, one changed byte fails" rclone_check

rclone_special_keys() {
  local k
  for k in "${special_keys[@]}"; do
    rcl copyto "$tmp/files/f1" "gw:$bucket/$run/rclone-keys/$k"
    rcl cat "gw:$bucket/$run/rclone-keys/$k" | cmp - "$tmp/files/f1"
  done
  expect_eq "keys listed" "$(rcl lsf -R --files-only "gw:$bucket/$run/rclone-keys" | LC_ALL=C sort)" \
    "$(printf '%s\n' "${special_keys[@]}" | LC_ALL=C sort)"
}
check "rclone copyto, cat and lsf of keys with space, +, %, ~, non-ASCII" rclone_special_keys

rclone_many() {
  local i
  mkdir -p "$tmp/many"
  for i in $(seq 1 200); do head -c $((i * 517)) /dev/urandom >"$tmp/many/f$i"; done
  # 32 uploads and checks at once: more than the CLI's usual load on the gateway.
  rcl copy --transfers 32 --checkers 32 "$tmp/many" "gw:$bucket/$run/rclone-many"
  rcl check --download --checkers 32 "$tmp/many" "gw:$bucket/$run/rclone-many"
  rcl delete --checkers 32 "gw:$bucket/$run/rclone-many"
  expect_eq "objects left" "$(rcl lsf "gw:$bucket/$run/rclone-many" | wc -l)" 0
}
check "rclone copy, check --download and delete of 200 files, 32 at a time" rclone_many

rclone_rcat() {
  local key="$run/rclone/rcat"
  # A stream of unknown size: rclone uploads it in --s3-chunk-size parts as it reads.
  head -c 12000000 "$GW_BIG" | rcl rcat --s3-chunk-size 5M "gw:$bucket/$key"
  rcl cat "gw:$bucket/$key" | cmp - <(head -c 12000000 "$GW_BIG")
  rcl cat --offset $((5 * MiB - 10)) --count 20 "gw:$bucket/$key" | cmp - <(tail -c +$((5 * MiB - 9)) "$GW_BIG" | head -c 20)
}
check "rclone rcat (12 MB stream, 5 MiB parts), cat whole and at an offset" rclone_rcat

# --- s3cmd -----------------------------------------------------------------------------------

step "s3cmd $("$py" "$venv/bin/s3cmd" --version 2>&1 | cut -d' ' -f3)"
s3cmd_rt() {
  local n=$1 key="$run/s3cmd/f$1"
  s3c put -q "$tmp/files/f$n" "s3://$bucket/$key"
  s3c get -q --force "s3://$bucket/$key" "$tmp/back/s3cmd-f$n"
  roundtrip "$key" "$tmp/files/f$n" "$tmp/back/s3cmd-f$n" 0
  # The same object read with a Signature V2 request.
  s3c get -q --force --signature-v2 "s3://$bucket/$key" "$tmp/back/s3cmd-v2-f$n"
  cmp "$tmp/files/f$n" "$tmp/back/s3cmd-v2-f$n"
}
for n in $sizes; do check "s3cmd put and get (SigV4, then get with SigV2), $n bytes" s3cmd_rt "$n"; done

s3cmd_multipart() {
  local key="$run/s3cmd/f30m"
  s3c put -q --multipart-chunk-size-mb=15 "$tmp/files/f30m" "s3://$bucket/$key"
  s3c get -q --force "s3://$bucket/$key" "$tmp/back/s3cmd-f30m"
  roundtrip "$key" "$tmp/files/f30m" "$tmp/back/s3cmd-f30m" $((15 * MiB))
}
check "s3cmd 30 MiB multipart (--multipart-chunk-size-mb=15) up and down; ETag -2" s3cmd_multipart

s3cmd_v2_put() {
  local key="$run/s3cmd/v2-f65537"
  s3c put -q --signature-v2 "$tmp/files/f65537" "s3://$bucket/$key"
  s3c get -q --force "s3://$bucket/$key" "$tmp/back/s3cmd-v2put"
  cmp "$tmp/files/f65537" "$tmp/back/s3cmd-v2put"
}
check "s3cmd put with SigV2" s3cmd_v2_put

s3cmd_sync() {
  local out
  s3c sync -q "$tmp/tree/" "s3://$bucket/$run/s3cmd-sync/"
  out=$(s3c ls --recursive "s3://$bucket/$run/s3cmd-sync/")
  echo "$out"
  expect_eq "objects listed" "$(wc -l <<<"$out")" 4
  grep -Eq " 3000000 +s3://$bucket/$run/s3cmd-sync/f3000000\$" <<<"$out" || fail "f3000000 size"
  grep -Eq " 65536 +s3://$bucket/$run/s3cmd-sync/sub/f65536\$" <<<"$out" || fail "sub/f65536 size"
  out=$(s3c sync --dry-run "$tmp/tree/" "s3://$bucket/$run/s3cmd-sync/")
  echo "$out"
  ! grep -q '^upload:' <<<"$out" || fail "a second sync would upload again"
  s3c sync -q "s3://$bucket/$run/s3cmd-sync/" "$tmp/back/s3cmd-sync/"
  diff -r "$tmp/tree" "$tmp/back/s3cmd-sync"
}
check "s3cmd sync up, ls --recursive with plaintext sizes, nothing left to sync, sync down equal" s3cmd_sync

s3cmd_signurl() {
  local key="$run/s3cmd/f65537" url
  # A Signature V2 query string: valid for a minute, then one already expired.
  url=$(s3c signurl "s3://$bucket/$key" +60)
  expect_eq "valid URL status" "$(gwtool fetch "$url" "$tmp/back/signurl")" 200
  cmp "$tmp/back/signurl" "$tmp/files/f65537"
  url=$(s3c signurl "s3://$bucket/$key" $(($(date +%s) - 5)))
  expect_eq "expired URL status" "$(gwtool fetch "$url" "$tmp/expired.xml")" 403
  grep -qi 'expired' "$tmp/expired.xml" || fail "no 'expired' in: $(cat "$tmp/expired.xml")"
}
check "s3cmd signurl (SigV2 presigned GET): valid URL reads the bytes, expired one is 403" s3cmd_signurl

s3cmd_special_keys() {
  local k out
  for k in "${special_keys[@]}"; do
    s3c put -q "$tmp/files/f65536" "s3://$bucket/$run/s3cmd-keys/$k"
    s3c get -q --force "s3://$bucket/$run/s3cmd-keys/$k" "$tmp/back/s3cmd-key"
    cmp "$tmp/files/f65536" "$tmp/back/s3cmd-key"
  done
  out=$(s3c ls --recursive "s3://$bucket/$run/s3cmd-keys/")
  echo "$out"
  for k in "${special_keys[@]}"; do
    grep -F "s3://$bucket/$run/s3cmd-keys/$k" <<<"$out" | grep -q ' 65536 ' || fail "'$k' not listed with 65536 bytes"
  done
  s3c del -q --recursive --force "s3://$bucket/$run/s3cmd-keys/"
  expect_eq "listing after del --recursive" "$(s3c ls --recursive "s3://$bucket/$run/s3cmd-keys/")" ""
}
check "s3cmd put, get, ls and del --recursive of keys with space, +, %, ~, non-ASCII" s3cmd_special_keys

# --- boto3 and the Python helper (pytest) -----------------------------------------------------

step "boto3 and isec.s3 (tests/gateway/test_clients.py)"
check "pytest tests/gateway/test_clients.py" \
  "$py" -m pytest -q -p no:cacheprovider tests/gateway/test_clients.py
sed -n '/passed\|failed\|error/p' "$tmp/check.log" | tail -n 1 | sed 's/^/        /'

# --- JS SDK v3 and the Node helper ------------------------------------------------------------

step "@aws-sdk/client-s3 and the Node helper (tests/gateway/sdk_v3.test.mjs)"
check "node --test tests/gateway/sdk_v3.test.mjs" node --test tests/gateway/sdk_v3.test.mjs
grep -E '^# (pass|fail)' "$tmp/check.log" | tr '\n' ' ' | sed 's/^/        /'
echo

# --- the README's commands -------------------------------------------------------------------

step "README.md's Gateway commands, as written (scripts/test-readme-gateway.sh)"
check "the README Gateway block runs and reads back what it wrote" \
  env AWS_CLI_BIN_DIR="$venv/bin" ISEC_README_ISEC_DIR="$(dirname "$ISEC_BIN")" bash scripts/test-readme-gateway.sh

# --- stop ------------------------------------------------------------------------------------

step "memory"
# 100 MiB objects went through it both ways, parts 10 at a time: a gateway that held an
# object (or a part per request) in memory would have passed 100 MiB.
gateway_memory() {
  local peak
  peak=$(awk '/^VmHWM:/ {print int($2 / 1024)}' "/proc/$gw_pid/status")
  echo "peak resident memory: $peak MiB"
  [ "$peak" -lt 100 ] || fail "the gateway's peak resident memory is $peak MiB"
}
check "the gateway's memory stayed bounded (peak resident set under 100 MiB)" gateway_memory

step "stop"
# Not through check: only this shell can wait for the gateway it started.
what="the gateway stops on SIGTERM within 10 s with exit status 0"
if stop_gateway; then
  passed+=("$what")
  printf '  ok    %s\n' "$what"
else
  failed+=("$what")
  printf '  FAIL  %s\n' "$what"
fi

what="the gateway logged no panic"
if ! grep -q 'panicked' "$tmp/gateway.err"; then
  passed+=("$what")
  printf '  ok    %s\n' "$what"
else
  failed+=("$what")
  printf '  FAIL  %s\n' "$what"
  grep -A3 'panicked' "$tmp/gateway.err" | head -n 20 | sed 's/^/        /'
fi

printf '\n%d checks passed, %d failed (%d s)\n' "${#passed[@]}" "${#failed[@]}" $((SECONDS - start_time))
for f in "${failed[@]}"; do printf '  FAILED: %s\n' "$f"; done
[ "${#failed[@]}" -eq 0 ]
