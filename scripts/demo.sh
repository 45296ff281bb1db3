#!/usr/bin/env bash
# The main job, for now: install, build, start three brickd "nodes" on
# 127.0.0.2-4, make a replica-3 volume of one brick on each, mount it with
# cairn-mount (FUSE) and use it: write and read files, df, the replicas as
# plain directories, one node killed while writing, quorum lost and back.
# (The provisioner issue turns this into `cairnctl local up`.)
# Everything lives under a temporary directory removed on exit; processes
# are stopped by the pids this script started.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
scripts/build.sh
BIN=$(realpath "${CAIRN_BUILD_DIR:-build}")

WORK=$(mktemp -d /tmp/cairn-demo-XXXXXX)
MNT="$WORK/mnt"
declare -A PIDS=()
MOUNT_PID=""
cleanup() {
  if mountpoint -q "$MNT" 2>/dev/null; then fusermount3 -u "$MNT" || umount -l "$MNT" || true; fi
  if [[ -n "$MOUNT_PID" ]]; then wait "$MOUNT_PID" 2>/dev/null || true; fi
  for n in "${!PIDS[@]}"; do
    kill -TERM "${PIDS[$n]}" 2>/dev/null || true
    wait "${PIDS[$n]}" 2>/dev/null || true
  done
  rm -rf "$WORK"
}
trap cleanup EXIT

head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n' > "$WORK/data.token"
head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n' > "$WORK/admin.token"
chmod 600 "$WORK"/*.token

start_node() {  # start_node N [PORT]: brickd on 127.0.0.N
  local n=$1 port=${2:-0}
  rm -f "$WORK/ready$n.json"
  "$BIN/brickd/brickd" --listen="127.0.0.$n:$port" --token-file="$WORK/data.token" \
    --admin-token-file="$WORK/admin.token" --state-file="$WORK/state$n.json" \
    --ready-file="$WORK/ready$n.json" --log-level=warn >> "$WORK/brickd$n.log" 2>&1 &
  PIDS[$n]=$!
  for _ in $(seq 100); do [[ -f "$WORK/ready$n.json" ]] && break; sleep 0.1; done
  [[ -f "$WORK/ready$n.json" ]] || { echo "brickd on 127.0.0.$n did not start"; exit 1; }
}
port_of() { python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["grpc_port"])' "$WORK/ready$1.json"; }

echo "== three nodes: brickd on 127.0.0.2, .3, .4, one brick each"
for n in 2 3 4; do
  start_node $n
  mkdir -p "$WORK/bricks/b$n"
  "$BIN/brickd/brickctl" --addr="127.0.0.$n:$(port_of $n)" --token-file="$WORK/admin.token" \
    attach "demo-b$n" "$WORK/bricks/b$n" $((256 << 20))
done
cat > "$WORK/volume.json" <<EOF
{"volume_id": "$(python3 -c 'import uuid; print(uuid.uuid4())')", "name": "demo",
 "type": "replicate", "replica": 3, "arbiter": 0, "generation": 1, "size_bytes": 0,
 "subvolumes": [[{"node": "127.0.0.2:$(port_of 2)", "brick_id": "demo-b2"},
                 {"node": "127.0.0.3:$(port_of 3)", "brick_id": "demo-b3"},
                 {"node": "127.0.0.4:$(port_of 4)", "brick_id": "demo-b4"}]]}
EOF
cat "$WORK/volume.json"

echo "== mount it: cairn-mount -o token_file=... volume.json $MNT"
mkdir -p "$MNT"
"$BIN/fuse/cairn-mount" -f -o "token_file=$WORK/data.token" "$WORK/volume.json" "$MNT" \
  > "$WORK/mount.log" 2>&1 &
MOUNT_PID=$!
for _ in $(seq 100); do mountpoint -q "$MNT" && break; sleep 0.1; done
mountpoint -q "$MNT" || { echo "mount failed:"; cat "$WORK/mount.log"; exit 1; }
grep " $MNT " /proc/mounts
df -h "$MNT"

echo "== write and read through the mount"
echo "hello from Cairn" > "$MNT/hello.txt"
mkdir -p "$MNT/docs/deep/er"
head -c 3000000 /dev/urandom > "$WORK/blob.bin"
cp "$WORK/blob.bin" "$MNT/docs/deep/er/blob.bin"
ln -s ../hello.txt "$MNT/docs/link"
ls -lR "$MNT"
cat "$MNT/docs/link"
cmp "$MNT/docs/deep/er/blob.bin" "$WORK/blob.bin" && echo "blob.bin: 3000000 bytes identical"

echo "== every brick holds a full replica, as a plain directory"
for n in 2 3 4; do
  echo "brick on 127.0.0.$n: $(cat "$WORK/bricks/b$n/hello.txt")," \
    "blob $(cmp -s "$WORK/bricks/b$n/docs/deep/er/blob.bin" "$WORK/blob.bin" && echo identical)"
done

echo "== kill -9 the node on 127.0.0.3 while writing: no error, nothing lost"
OLD_PORT=$(port_of 3)
( for i in $(seq 40); do head -c 262144 /dev/urandom; done ) > "$WORK/stream.bin"
( dd if="$WORK/stream.bin" of="$MNT/stream.bin" bs=64k status=none ) &
WRITER=$!
sleep 0.05
kill -9 "${PIDS[3]}"; wait "${PIDS[3]}" 2>/dev/null || true; unset "PIDS[3]"
wait $WRITER && echo "writer finished without an error"
cmp "$MNT/stream.bin" "$WORK/stream.bin" && echo "stream.bin: contents right"

echo "== kill the node on 127.0.0.4 too: no quorum, writes refused, reads go on"
kill -9 "${PIDS[4]}"; wait "${PIDS[4]}" 2>/dev/null || true; unset "PIDS[4]"
for f in refused1.txt refused2.txt; do
  ( echo "x" > "$MNT/$f" ) 2> "$WORK/err.txt" ||
    echo "write of $f refused: $(sed 's/.*: //' "$WORK/err.txt")"
done
echo "read still works: $(cat "$MNT/hello.txt")"

echo "== both nodes come back: writes reach all three again"
start_node 3 "$OLD_PORT"
start_node 4 "$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["subvolumes"][0][2]["node"].split(":")[1])' "$WORK/volume.json")"
for i in $(seq 50); do
  if echo "back $i" > "$MNT/back-$i.txt" 2>/dev/null && [[ -f "$WORK/bricks/b3/back-$i.txt" && -f "$WORK/bricks/b4/back-$i.txt" ]]; then
    echo "back-$i.txt written to all three bricks"
    break
  fi
  sleep 0.2
done

echo "== unmount"
fusermount3 -u "$MNT"
wait "$MOUNT_PID" && echo "cairn-mount exited cleanly"
MOUNT_PID=""
echo "== demo done"
