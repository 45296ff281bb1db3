#!/usr/bin/env bash
# The main job: install the packages, build, start a local Cairn cluster with
# `cairnctl local up` (the provisioner and three nodes — storaged + brickd on
# 127.0.0.2-4 — that register themselves), create a replica-3 volume through
# the provisioner's REST API, mount it (FUSE), write and read a file, show
# where the replicas are, then claim a second volume through the CSI driver
# (CreateVolume, NodeStageVolume, NodePublishVolume into two "pods"), and say
# what to try next. The cluster stays up for
# you to use; `cairnctl local down --purge` stops and removes it.
#
# Environment:
#   CAIRN_DEMO_NO_BUILD=1  skip setup.sh and build.sh (packages installed, build/ current)
#   CAIRN_DEMO_DOWN=1      stop and remove the cluster at the end (tests use it)
#   CAIRN_LOCAL_DIR=DIR    the cluster's directory (default ~/.cairn/local)
#   CAIRN_DEMO_PORTS=0     let the programs pick free ports (tests use it)
set -euo pipefail
cd "$(dirname "$0")/.."
if [[ -z "${CAIRN_DEMO_NO_BUILD:-}" ]]; then
  scripts/setup.sh
  scripts/build.sh
fi
BIN=$(realpath "${CAIRN_BUILD_DIR:-build}")
CTL="$BIN/cairnctl/cairnctl"
DIR=${CAIRN_LOCAL_DIR:-$HOME/.cairn/local}
MNT="$DIR/mnt/demo"
PORTS=()
if [[ "${CAIRN_DEMO_PORTS:-}" == "0" ]]; then PORTS=(--port 0 --storaged-port 0); fi
# The context file cairnctl writes lives with the cluster when DIR is not the default.
if [[ -n "${CAIRN_LOCAL_DIR:-}" && -z "${CAIRN_CONFIG:-}" ]]; then
  export CAIRN_CONFIG="$DIR/config"
fi

step() { printf '\n\033[1m== %s\033[0m\n' "$*"; }
finish() {
  local rc=$?
  if [[ -n "${CAIRN_DEMO_DOWN:-}" ]]; then
    step "cairnctl local down --purge"
    "$CTL" local down --dir "$DIR" --purge || rc=1
  elif [[ $rc -ne 0 ]]; then
    echo "demo: failed (exit $rc). Logs: $DIR/logs/. Stop everything: $CTL local down --dir $DIR" >&2
  fi
  exit $rc
}
trap finish EXIT

step "cairnctl local up --nodes 3 --dir $DIR"
"$CTL" local up --nodes 3 --dir "$DIR" --device-size 20 "${PORTS[@]}"

step "cairnctl node list"
"$CTL" node list

step "cairnctl volume create --name demo --size 1 --replica 3"
"$CTL" volume create --name demo --size 1 --replica 3

step "cairnctl volume mount demo $MNT"
mkdir -p "$MNT"
if ! mountpoint -q "$MNT"; then "$CTL" volume mount demo "$MNT"; fi
df -h "$MNT"

step "write and read a file"
echo "hello from Cairn, $(date -u +%FT%TZ)" > "$MNT/hello.txt"
cat "$MNT/hello.txt"
dd if=/dev/urandom of="$MNT/random.bin" bs=1M count=8 status=none
sha256sum "$MNT/random.bin"

step "the three replicas (each brick is a plain directory on its node's device)"
"$CTL" volume info demo
for f in "$DIR"/node-*/device/bricks/*/; do
  if [[ -e "$f/random.bin" ]]; then sha256sum "$f/random.bin"; fi
done

step "cairnctl volume heal info demo"
"$CTL" volume heal info demo

# The claim flow as Kubernetes drives it: `local up` started the CSI driver
# (cairn-csi, controller + node) on $DIR/csi.sock; cairn-csc makes the calls
# the external-provisioner and the kubelet would make.
CSC=("$BIN/csi/cairn-csc" --endpoint "unix://$DIR/csi.sock")
KUBELET="$DIR/kubelet"
step "CSI CreateVolume pvc-demo (1 GiB, ReadWriteMany), as the external-provisioner calls it"
eval "$("${CSC[@]}" create pvc-demo --size 1 --mode rwx -o env)"
echo "volume_id $CSI_VOLUME_ID, ${CSI_CAPACITY_BYTES} bytes, source $CSI_CONTEXT_source"
STAGING="$KUBELET/plugins/kubernetes.io/csi/csi.cairn.io/$CSI_VOLUME_ID/globalmount"
POD_A="$KUBELET/pods/pod-a/volumes/kubernetes.io~csi/pvc-demo/mount"
POD_B="$KUBELET/pods/pod-b/volumes/kubernetes.io~csi/pvc-demo/mount"

step "CSI NodeStageVolume (cairn-mount) and NodePublishVolume into two pods, as the kubelet calls them"
"${CSC[@]}" stage "$CSI_VOLUME_ID" "$STAGING" --mode rwx \
  --context source="$CSI_CONTEXT_source" --context name="$CSI_CONTEXT_name"
"${CSC[@]}" publish "$CSI_VOLUME_ID" "$STAGING" "$POD_A" --mode rwx
"${CSC[@]}" publish "$CSI_VOLUME_ID" "$STAGING" "$POD_B" --mode rwx
echo "written by pod-a at $(date -u +%FT%TZ)" > "$POD_A/shared.txt"
printf 'pod-b reads: '; cat "$POD_B/shared.txt"
df -h "$POD_B"
"${CSC[@]}" stats "$CSI_VOLUME_ID" "$POD_B"

cat <<EOF

Cairn is running: provisioner + 3 nodes, logs in $DIR/logs/, volume 'demo' mounted at $MNT.
Try next:
  $CTL volume create --name shared --size 2 --arbiter     # replica 3 with an arbiter
  $CTL volume expand demo --size 1                        # grows in place; df $MNT shows it
  $CTL topology info                                      # clusters, nodes, devices, bricks
  $CTL -o json volume list
  kill -9 one node's brickd (pids in $DIR/node-*/brickd.pid): storaged restarts it, I/O goes on
  scripts/fault-demo.sh                                   # whole-node kills and self-heal, step by step
  ${CSC[*]} info                                          # the CSI driver: capabilities, probe
  kill -9 \$(pgrep -f "$STAGING")                          # the FUSE process under both pods dies;
  ${CSC[*]} stats $CSI_VOLUME_ID $POD_B                   #   abnormal, then cairn-csi remounts it
  $CTL volume unmount $MNT && $CTL local down --purge     # stop and remove everything (CSI mounts too)
EOF
