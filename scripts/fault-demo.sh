#!/usr/bin/env bash
# The fault demo: install, build, start three storaged nodes on
# 127.0.0.2-4 (each runs and supervises its own brickd, and self-heal), add a
# device and a brick on each with storagectl, put a replica-3 volume spec on
# every node, mount it with cairn-mount from the nodes (FUSE) and use it:
# files, df, the replicas as plain directories; kill -9 one brickd (storaged
# restarts it); kill -9 a whole node in the middle of a write, change the tree
# while it is down, bring it back and watch self-heal make the three bricks
# identical again. (scripts/demo.sh is the main job: `cairnctl local up`.)
# Everything lives under a temporary directory removed on exit; processes are
# stopped by the pids this script started or learned (brickd pids from
# storaged), the mount is unmounted, whatever step fails.
#
# CAIRN_DEMO_NO_BUILD=1 skips setup.sh and build.sh, for when the packages are
# installed and build/ (or $CAIRN_BUILD_DIR) is up to date but must not be
# rebuilt now (say, while the test suite runs from it).
set -euo pipefail
cd "$(dirname "$0")/.."
if [[ -z "${CAIRN_DEMO_NO_BUILD:-}" ]]; then
  scripts/setup.sh
  scripts/build.sh
fi
BIN=$(realpath "${CAIRN_BUILD_DIR:-build}")

NODES=(2 3 4)
VOL=demo
WORK=$(mktemp -d /tmp/cairn-demo-XXXXXX)
MNT="$WORK/mnt"
declare -A SPIDS=()      # storaged pid per node (our children)
declare -A API_PORT=()   # storaged API port per node, kept across restarts
declare -A API=() BRICKD=()
BRICKD_PIDS=()           # every brickd pid we learned (not our children)
MOUNT_PID="" WRITER=""

# True if PID is a process of this demo (its command line names $WORK): pids
# of killed processes may be reused, and we never signal anyone else's.
ours() { local c; c=$({ tr '\0' ' ' < "/proc/$1/cmdline"; } 2>/dev/null) && [[ "$c" == *"$WORK/"* ]]; }
cleanup() {
  local rc=$? pid n
  set +e
  trap - ERR
  if [[ -n "$WRITER" ]]; then kill -9 "$WRITER" 2>/dev/null; wait "$WRITER" 2>/dev/null; fi
  if mountpoint -q "$MNT" 2>/dev/null; then
    fusermount3 -u "$MNT" 2>/dev/null || umount -l "$MNT"
  fi
  if [[ -n "$MOUNT_PID" ]]; then kill -TERM "$MOUNT_PID" 2>/dev/null; wait "$MOUNT_PID" 2>/dev/null; fi
  # SIGTERM to storaged stops its brickd too (up to 10 s for a clean close).
  for n in "${!SPIDS[@]}"; do kill -TERM "${SPIDS[$n]}" 2>/dev/null; done
  for n in "${!SPIDS[@]}"; do wait "${SPIDS[$n]}" 2>/dev/null; done
  # A brickd whose storaged was killed outlives it: the pids we learned, and
  # the one each state dir records.
  for n in "${NODES[@]}"; do
    [[ -f "$WORK/node$n/brickd.pid" ]] &&
      BRICKD_PIDS+=("$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["pid"])' \
                       "$WORK/node$n/brickd.pid" 2>/dev/null)")
  done
  for pid in "${BRICKD_PIDS[@]}"; do [[ -n "$pid" ]] && ours "$pid" && kill -TERM "$pid"; done
  for _ in $(seq 50); do
    local left=0
    for pid in "${BRICKD_PIDS[@]}"; do [[ -n "$pid" ]] && ours "$pid" && left=1; done
    ((left)) || break
    sleep 0.1
  done
  for pid in "${BRICKD_PIDS[@]}"; do [[ -n "$pid" ]] && ours "$pid" && kill -9 "$pid"; done
  if ((rc != 0)); then
    for f in "$WORK"/*.log; do
      [[ -s "$f" ]] && { echo "--- last lines of $(basename "$f"):"; tail -n 15 "$f"; }
    done >&2
    echo "demo: FAILED (exit $rc)" >&2
  fi
  rm -rf "$WORK"
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM
trap 'echo "demo: failed at line $LINENO: $BASH_COMMAND" >&2' ERR

step() { printf '\n== %s\n' "$*"; }
die() { echo "demo: $*" >&2; exit 1; }
now_ms() { echo $(($(date +%s%N) / 1000000)); }
human() { numfmt --to=iec-i --suffix=B --round=nearest --format=%.1f "$1"; }
jget() { python3 -c 'import json,sys; print(json.load(sys.stdin)[sys.argv[1]])' "$1"; }
# wait_for SECONDS WHAT COMMAND...: poll COMMAND every 0.1 s, fail naming WHAT.
wait_for() {
  local secs=$1 what=$2
  shift 2
  local end=$(($(now_ms) + secs * 1000))
  until "$@"; do
    (($(now_ms) < end)) || die "timed out after ${secs}s waiting for $what"
    sleep 0.1
  done
}
ctl() {  # ctl N ARGS...: storagectl against node N with the admin token
  local n=$1
  shift
  "$BIN/storaged/storagectl" --server="${API[$n]}" --token-file="$WORK/admin.token" "$@"
}
brickd_pid() { ctl "$1" node -o json | jget brickd_pid; }
brick_dir() { echo "$WORK/dev$1/bricks/$VOL-b$1"; }

head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n' > "$WORK/data.token"
head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n' > "$WORK/admin.token"
chmod 600 "$WORK"/*.token

# start_node N: storaged on 127.0.0.N with its state in $WORK/nodeN. brickd's
# port is chosen at the first start and kept in the state; the API port too
# (we pass the one it got the first time), so the mount's server list and the
# volume spec stay valid across restarts.
start_node() {
  local n=$1
  mkdir -p "$WORK/node$n"
  rm -f "$WORK/ready$n.json"
  "$BIN/storaged/storaged" --node-name="node$n" --listen="127.0.0.$n:${API_PORT[$n]:-0}" \
    --brickd-listen="127.0.0.$n:0" --brickd="$BIN/brickd/brickd" --state-dir="$WORK/node$n" \
    --token-file="$WORK/data.token" --admin-token-file="$WORK/admin.token" \
    --ready-file="$WORK/ready$n.json" --log-level=warn >> "$WORK/storaged$n.log" 2>&1 &
  SPIDS[$n]=$!
  local end=$(($(now_ms) + 15000))
  until [[ -s "$WORK/ready$n.json" ]]; do
    kill -0 "${SPIDS[$n]}" 2>/dev/null || { unset "SPIDS[$n]"; die "storaged on 127.0.0.$n exited at start: $(tail -n 3 "$WORK/storaged$n.log")"; }
    (($(now_ms) < end)) || die "storaged on 127.0.0.$n not ready after 15s"
    sleep 0.1
  done
  API[$n]=$(jget listen < "$WORK/ready$n.json")
  API_PORT[$n]=${API[$n]##*:}
  BRICKD[$n]=$(jget brickd < "$WORK/ready$n.json")
  BRICKD_PIDS+=("$(brickd_pid "$n")")
}

step "1. three nodes: storaged on 127.0.0.2, .3, .4 (each starts its own brickd)"
for n in "${NODES[@]}"; do
  start_node "$n"
  echo "node$n: storaged pid ${SPIDS[$n]}, API ${API[$n]}, brickd ${BRICKD[$n]} (pid ${BRICKD_PIDS[-1]})"
done

step "2. storagectl: a device and a 1 GiB brick on each node, the volume spec on every node"
for n in "${NODES[@]}"; do
  mkdir -p "$WORK/dev$n"
  ctl "$n" device add "d$n" "$WORK/dev$n"
  ctl "$n" brick create "d$n" "$VOL-b$n" --capacity 1G
done
python3 - "$VOL" "${BRICKD[2]}" "${BRICKD[3]}" "${BRICKD[4]}" > "$WORK/$VOL.json" <<'EOF'
import json, sys, uuid
name, nodes = sys.argv[1], sys.argv[2:]
print(json.dumps({"volume_id": str(uuid.uuid4()), "name": name, "type": "replicate",
                  "replica": 3, "arbiter": 0, "generation": 1, "size_bytes": 0,
                  "subvolumes": [[{"node": a, "brick_id": f"{name}-b{a.split(':')[0][-1]}"}
                                  for a in nodes]]}, indent=1))
EOF
cat "$WORK/$VOL.json"
for n in "${NODES[@]}"; do ctl "$n" spec put "$WORK/$VOL.json"; done
echo "-- storagectl --server=${API[2]} node / device list / brick list / spec list"
ctl 2 node
ctl 2 device list
ctl 2 brick list
ctl 2 spec list

step "3. mount: cairn-mount -o token_file=... ${API[2]},${API[3]},${API[4]}:/$VOL"
mkdir -p "$MNT"
"$BIN/fuse/cairn-mount" -f -o "token_file=$WORK/data.token" \
  "${API[2]},${API[3]},${API[4]}:/$VOL" "$MNT" > "$WORK/mount.log" 2>&1 &
MOUNT_PID=$!
mounted() { mountpoint -q "$MNT" || { kill -0 "$MOUNT_PID" 2>/dev/null || die "cairn-mount exited: $(cat "$WORK/mount.log")"; false; }; }
wait_for 15 "the mount at $MNT" mounted
grep " $MNT " /proc/mounts
df -h "$MNT"
echo "hello from Cairn" > "$MNT/hello.txt"
mkdir -p "$MNT/docs/deep/er"
head -c 3000000 /dev/urandom > "$WORK/blob.bin"
cp "$WORK/blob.bin" "$MNT/docs/deep/er/blob.bin"
ln -s ../hello.txt "$MNT/docs/link"
for i in $(seq 20); do echo "small file $i" > "$MNT/docs/small-$i.txt"; done
ls -l "$MNT" "$MNT/docs/deep/er"
echo "read back: $(cat "$MNT/docs/link")"
cmp "$MNT/docs/deep/er/blob.bin" "$WORK/blob.bin" || die "blob.bin read back wrong"
echo "blob.bin: 3000000 bytes, identical"
echo "-- each brick is a plain directory on its node's device (Cairn's own metadata in .cairn):"
ls -lA "$(brick_dir 2)"
for n in "${NODES[@]}"; do
  b=$(brick_dir "$n")
  echo "$b: $(cat "$b/hello.txt"), $(find "$b" -path "$b/.cairn" -prune -o -type f -print | wc -l) files," \
    "blob $(cmp -s "$b/docs/deep/er/blob.bin" "$WORK/blob.bin" && echo identical || echo DIFFERENT)"
done

step "4. kill -9 node3's brickd only: its storaged restarts it"
old=$(brickd_pid 3)
t0=$(now_ms)
kill -9 "$old"
# storaged records the new brickd in its state dir once it is ready (cheap to
# poll), then attaches the bricks (brickd_up).
new_pid() { [[ $(cat "$WORK/node3/brickd.pid" 2>/dev/null) =~ \"pid\":([0-9]+) ]] &&
            [[ ${BASH_REMATCH[1]} != "$old" ]] && new=${BASH_REMATCH[1]}; }
until new_pid; do (($(now_ms) - t0 < 10000)) || die "storaged did not restart node3's brickd in 10 s"; sleep 0.01; done
BRICKD_PIDS+=("$new")
t1=$(now_ms)
up() { [[ $(ctl 3 node -o json | jget brickd_up) == True ]]; }
wait_for 10 "node3's brickd to have its brick attached again" up
echo "brickd pid $old killed; new brickd pid $new ready after $((t1 - t0)) ms;" \
  "storagectl node reports its brick attached ('up') $(($(now_ms) - t0)) ms after the kill"
ctl 3 node | grep brickd
echo "written after the restart" > "$MNT/after-restart.txt"
echo "read: $(cat "$MNT/after-restart.txt"); $(cat "$MNT/hello.txt")"
cmp "$MNT/docs/deep/er/blob.bin" "$WORK/blob.bin" || die "blob.bin read back wrong"
echo "blob.bin still identical"

step "5. kill -9 node4 (storaged and brickd) in the middle of a 64 MiB write"
head -c $((64 << 20)) /dev/urandom > "$WORK/big.bin"
victim=$(brickd_pid 4)
dd if="$WORK/big.bin" of="$MNT/big.bin" bs=1M conv=fsync status=none &
WRITER=$!
t0=$(now_ms)
b2big="$(brick_dir 2)/big.bin"
until [[ $(stat -c %s "$b2big" 2>/dev/null || echo 0) -ge $((12 << 20)) ]] || ! kill -0 "$WRITER" 2>/dev/null; do
  (($(now_ms) - t0 < 30000)) || die "the 64 MiB write made no progress in 30 s"
  sleep 0.02
done
kill -0 "$WRITER" 2>/dev/null && state="in the middle of the write" || state="but the write had already finished"
written=$(stat -c %s "$b2big")
kill -9 "${SPIDS[4]}" "$victim"
echo "killed node4 (storaged ${SPIDS[4]}, brickd $victim) $state: $(human "$written") of 64 MiB written"
wait "${SPIDS[4]}" 2>/dev/null || true
unset "SPIDS[4]"
if wait "$WRITER"; then WRITER=""; else die "the write failed"; fi
echo "dd finished without an error after $(($(now_ms) - t0)) ms"
cmp "$MNT/big.bin" "$WORK/big.bin" || die "big.bin read back wrong"
echo "big.bin: 64 MiB, contents right"
echo "-- change the tree while node4 is down"
mkdir -p "$MNT/while-down/sub"
for i in $(seq 10); do echo "new $i" > "$MNT/while-down/sub/new-$i.txt"; done
mv "$MNT/docs/small-1.txt" "$MNT/docs/renamed-1.txt"
mv "$MNT/docs/deep" "$MNT/while-down/deep-moved"
rm "$MNT/docs/small-2.txt" "$MNT/docs/small-3.txt"
rm "$MNT/while-down/sub/new-10.txt"
echo "appended while node4 was down" >> "$MNT/hello.txt"
ln -s ../hello.txt "$MNT/while-down/link"
ls -R "$MNT/while-down"
heal_state() {  # heal_state N: "PENDING CONNECTED OBJECTS BYTES" as node N's self-heal sees the volume
  ctl "$1" heal info "$VOL" -o json | python3 -c 'import json,sys; d=json.load(sys.stdin); b=d["bricks"]
print(sum(int(x["pending"]) for x in b), sum(1 for x in b if x["connected"]), d["healed_objects"], d["healed_bytes"])'
}
sleep 0.5  # let the healer's probe notice node4 is gone
echo "-- storagectl --server=${API[2]} heal info $VOL"
ctl 2 heal info "$VOL"
read -r pending _ objs0 bytes0 <<< "$(heal_state 2)"
((pending > 0)) || die "heal info shows nothing pending while node4 is down"
echo "$pending dirty marks pending heal on the two live bricks (each object node4 missed is marked on both)"

step "6. restart node4's storaged (same flags, same state dir): self-heal brings its brick up to date"
t0=$(now_ms)
start_node 4
echo "node4 back: storaged pid ${SPIDS[4]}, brickd ${BRICKD[4]} (pid ${BRICKD_PIDS[-1]})"
healed() {
  local st p c
  st=$(heal_state 2 2>/dev/null) || return 1
  read -r p c _ _ <<< "$st"
  if [[ "$st" != "${last_st:-}" ]]; then echo "  $(($(now_ms) - t0)) ms: pending $p, $c of 3 bricks connected"; last_st=$st; fi
  [[ "$p" == 0 && "$c" == 3 ]]
}
wait_for 60 "self-heal to finish (heal info pending 0 on every brick)" healed
read -r _ _ objs1 bytes1 <<< "$(heal_state 2)"
echo "healed in $(($(now_ms) - t0)) ms after the restart: $((objs1 - objs0)) objects," \
  "$(human $((bytes1 - bytes0))) of data ($((bytes1 - bytes0)) bytes) copied to node4"
ctl 2 heal info "$VOL"
echo "-- the three bricks, compared (names, types, modes, symlink targets, file contents; .cairn left out)"
tree_hash() {
  (cd "$1" && { find . -path ./.cairn -prune -o -printf '%y %m %p %l\n' | LC_ALL=C sort
                find . -path ./.cairn -prune -o -type f -print0 | LC_ALL=C sort -z | xargs -0 -r sha256sum; } |
     sha256sum | cut -d' ' -f1)
}
declare -A HASH=()
for n in "${NODES[@]}"; do
  HASH[$n]=$(tree_hash "$(brick_dir "$n")")
  echo "$VOL-b$n: ${HASH[$n]}  $(find "$(brick_dir "$n")" -path "$(brick_dir "$n")/.cairn" -prune -o -print | wc -l) entries"
done
[[ "${HASH[2]}" == "${HASH[3]}" && "${HASH[3]}" == "${HASH[4]}" ]] || die "the bricks differ after heal"
echo "all three replicas identical"
cmp "$(brick_dir 4)/big.bin" "$WORK/big.bin" || die "node4's big.bin differs after heal"
echo "node4's big.bin: 64 MiB, contents right"

step "7. unmount and stop: SIGTERM to each storaged stops its brickd"
fusermount3 -u "$MNT"
wait "$MOUNT_PID" || die "cairn-mount exited with an error: $(tail -n 3 "$WORK/mount.log")"
MOUNT_PID=""
echo "cairn-mount exited cleanly"
for n in "${NODES[@]}"; do kill -TERM "${SPIDS[$n]}"; done
for n in "${NODES[@]}"; do
  rc=0
  wait "${SPIDS[$n]}" || rc=$?
  ((rc == 0)) || die "storaged on node$n exited with $rc"
  echo "node$n: storaged exited cleanly"
  unset "SPIDS[$n]"
done
brickds_gone() { local p; for p in "${BRICKD_PIDS[@]}"; do ours "$p" && return 1; done; return 0; }
wait_for 10 "every brickd to exit" brickds_gone
echo "no brickd left"
step "demo done"
