#!/usr/bin/env bash
# The main job, for now: install, build, start ONE brickd serving three bricks,
# and show it serving (attach, write, list, read, capacity, metrics). Later
# issues turn this into a local cluster that provisions and mounts a volume.
# Everything lives under a temporary directory that is removed on exit.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
scripts/build.sh
BIN=${CAIRN_BUILD_DIR:-build}

WORK=$(mktemp -d /tmp/cairn-demo-XXXXXX)
BRICKD_PID=""
cleanup() {
  if [[ -n "$BRICKD_PID" ]] && kill -0 "$BRICKD_PID" 2>/dev/null; then
    kill -TERM "$BRICKD_PID"
    wait "$BRICKD_PID" || true
  fi
  rm -rf "$WORK"
}
trap cleanup EXIT

head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n' > "$WORK/data.token"
head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n' > "$WORK/admin.token"
chmod 600 "$WORK"/*.token
"$BIN/brickd/brickd" --listen=127.0.0.1:0 --metrics-listen=127.0.0.1:0 \
  --token-file="$WORK/data.token" --admin-token-file="$WORK/admin.token" \
  --state-file="$WORK/brickd-state.json" --ready-file="$WORK/ready.json" \
  --log-level=warn &
BRICKD_PID=$!
for _ in $(seq 100); do [[ -f "$WORK/ready.json" ]] && break; sleep 0.1; done
[[ -f "$WORK/ready.json" ]] || { echo "brickd did not start"; exit 1; }
GRPC_PORT=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["grpc_port"])' "$WORK/ready.json")
METRICS_PORT=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["metrics_port"])' "$WORK/ready.json")
ctl() { "$BIN/brickd/brickctl" --addr="127.0.0.1:$GRPC_PORT" --token-file="$WORK/admin.token" "$@"; }

echo "== brickd pid $BRICKD_PID serving on 127.0.0.1:$GRPC_PORT (metrics :$METRICS_PORT)"
for b in b1 b2 b3; do
  mkdir -p "$WORK/bricks/$b"
  ctl attach "$b" "$WORK/bricks/$b" $((64 << 20))
done
ctl list
echo "== one process, one port, three bricks"
echo "processes: $(pgrep -c -P $$ -f "$BIN/brickd/brickd" || true) brickd;" \
  "threads: $(awk '/^Threads:/{print $2}' /proc/$BRICKD_PID/status)"
echo "hello from Cairn" > "$WORK/hello.txt"
ctl put b1 "$WORK/hello.txt" hello.txt
head -c 3000000 /dev/urandom > "$WORK/blob.bin"
ctl put b2 "$WORK/blob.bin" blob.bin
ctl ls b1
ctl ls b2
echo "== read back"
ctl get b1 hello.txt
ctl get b2 blob.bin | cmp - "$WORK/blob.bin" && echo "blob.bin: 3000000 bytes identical"
echo "== the brick is a plain directory an operator can read"
ls -la "$WORK/bricks/b1"
cat "$WORK/bricks/b1/hello.txt"
echo "== capacity is enforced"
ctl statfs b2
head -c $((70 << 20)) /dev/zero > "$WORK/too-big.bin"
ctl put b2 "$WORK/too-big.bin" too-big.bin || echo "(refused as expected)"
echo "== metrics (Prometheus)"
curl -s -H "Authorization: Bearer $(cat "$WORK/data.token")" \
  "http://127.0.0.1:$METRICS_PORT/metrics" | grep -E '^cairn_brick(d_bricks|_ops_total)' | head -12
echo "== demo done; stopping brickd"
