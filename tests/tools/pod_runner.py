#!/usr/bin/env python3
"""Test-only runner: start the pod templates of one rendered site (`nodectl stack render --out`)
under containerd with `ctr run`, with exactly the values the manifest gives.

    pod_runner.py --manifest F --state DIR --address SOCK --namespace NS --prefix P --subnet 198.18.31 CMD
      plan                 the pods, their addresses and ctr arguments (JSON; no secret values)
      net-up | net-down    the pod network (below)
      start POD...         start pods (names as Kubernetes gives them: mariadb-master-0, redis, ...)
      start POD --as NAME  one more pod from POD's template (own name, address and volumes)
      probe POD KIND       run the pod's KIND probe (startup|readiness|liveness) as kubelet would,
                           until it succeeds or failureThreshold * periodSeconds pass; exit 0/1
      run-job CRONJOB [--name N] [-- CMD...]  one Job pod of the CronJob, to completion; exit code
                           is the container's (CMD replaces the container's command: restores)
      endpoint SVC PORT    the pod address and target port a Service port leads to (kube-proxy's job)
      stop POD... | stop-all

What the manifest gives and the runner reproduces, per container: the image; command/args over the
image's entrypoint/cmd as Kubernetes combines them, with $(VAR) expansion and $$ escapes; env and
envFrom with values from the rendered Secret/ConfigMap objects (secretKeyRef, configMapKeyRef) and
the downward API (metadata.name/namespace/labels, status.podIP; StatefulSet pods get the
statefulset.kubernetes.io/pod-name and apps.kubernetes.io/pod-index labels); volumes: secret and
configMap projected to files with their items and modes (mounted read-only), emptyDir and the
StatefulSet's volumeClaimTemplates as empty 0777 directories of the run, hostPath as the path;
readOnly mounts; securityContext: readOnlyRootFilesystem (--read-only), capabilities (exactly
the add list when ALL is dropped), allowPrivilegeEscalation false (no_new_privs, ctr's default),
seccompProfile RuntimeDefault (--seccomp: containerd's default profile, the one the CRI uses),
runAsUser 0 or unset (anything else is refused: ctr 1.6 has no --user); limits (--memory-limit,
--cpus); ports (each pod has its own network namespace and address, so every containerPort is
what the manifest says).

Network: one namespace "<prefix>-cl" holding a bridge; each pod a namespace with a veth on it and
the address SUBNET.(64+i)/24 (the pod network is SUBNET.64/26); the host reaches the bridge through
a veth with SUBNET.1 (outside the pod network). Service names (NAME, NAME.NS, NAME.NS.svc,
NAME.NS.svc.cluster.local) and StatefulSet pod names (POD.SERVICE...) resolve through an
/etc/hosts file mounted into every container: a Service name gives its pod's address directly.

A second site's manifest (the monitoring namespace) joins the same bridge: --bridge PREFIX-cl of the
first runner, --pod-base above its pods; --resolv IP gives its pods a resolv.conf naming a DNS
server the test runs in cluster DNS's place (Prometheus' DNS service discovery needs SRV records).
A persistentVolumeClaim volume is a 0777 directory of the run, like the StatefulSets' claims.

NOT reproduced: cluster DNS (unless --resolv names a stand-in) and kube-proxy (a Service port different from its targetPort, e.g.
varnish 80 -> 6081, is not translated; clients here use the targetPort), NetworkPolicy, kubelet's
probes and restarts (`probe` runs a probe when asked), Pod Security admission, the scheduler and
controllers (one pod per workload unless replicas says more; no HPA), fsGroup, resource requests.
"""
import argparse
import base64
import json
import os
import re
import shutil
import socket
import subprocess
import sys
import time
import urllib.request

import yaml

# Every Linux capability (linux/capability.h, 5.x kernels): what a container may hold.
ALL_CAPS = ["CHOWN", "DAC_OVERRIDE", "DAC_READ_SEARCH", "FOWNER", "FSETID", "KILL", "SETGID", "SETUID",
            "SETPCAP", "LINUX_IMMUTABLE", "NET_BIND_SERVICE", "NET_BROADCAST", "NET_ADMIN", "NET_RAW",
            "IPC_LOCK", "IPC_OWNER", "SYS_MODULE", "SYS_RAWIO", "SYS_CHROOT", "SYS_PTRACE", "SYS_PACCT",
            "SYS_ADMIN", "SYS_BOOT", "SYS_NICE", "SYS_RESOURCE", "SYS_TIME", "SYS_TTY_CONFIG", "MKNOD",
            "LEASE", "AUDIT_WRITE", "AUDIT_CONTROL", "SETFCAP", "MAC_OVERRIDE", "MAC_ADMIN", "SYSLOG",
            "WAKE_ALARM", "BLOCK_SUSPEND", "AUDIT_READ", "PERFMON", "BPF", "CHECKPOINT_RESTORE"]
# containerd's default set (oci.defaultUnixCaps), what a container gets without any drop/add.
DEFAULT_CAPS = ["CHOWN", "DAC_OVERRIDE", "FSETID", "FOWNER", "MKNOD", "NET_RAW", "SETGID", "SETUID",
                "SETFCAP", "SETPCAP", "NET_BIND_SERVICE", "SYS_CHROOT", "KILL", "AUDIT_WRITE"]
POD_BASE = 64


def die(msg):
    print(f"pod_runner: error: {msg}", file=sys.stderr)
    sys.exit(2)


def cri_name(ref):
    """The name containerd's CRI looks an image up by: a reference with both a tag and a digest
    loses the tag (containerd's docker.ParseDockerRef), so NAME:TAG@sha256:D is found only as
    NAME@sha256:D; without a digest the reference is used as written (these are fully qualified)."""
    if "@" not in ref:
        return ref
    name, digest = ref.split("@", 1)
    last = name.rsplit("/", 1)
    if ":" in last[-1]:
        name = name[: len(name) - len(last[-1])] + last[-1].split(":", 1)[0]
    return f"{name}@{digest}"


def quantity(q, cpu=False):
    """Kubernetes quantity -> bytes (memory) or cores (cpu)."""
    s = str(q)
    if cpu:
        return float(s[:-1]) / 1000 if s.endswith("m") else float(s)
    units = {"Ki": 1024, "Mi": 1024**2, "Gi": 1024**3, "Ti": 1024**4, "k": 1000, "M": 1000**2, "G": 1000**3}
    for u, f in units.items():
        if s.endswith(u):
            return int(float(s[:-len(u)]) * f)
    return int(s)


class Site:
    def __init__(self, args):
        self.a = args
        with open(args.manifest) as f:
            self.docs = [d for d in yaml.safe_load_all(f) if d]
        self.ns = next(d["metadata"]["name"] for d in self.docs if d["kind"] == "Namespace")
        self.objs = {(d["kind"], d["metadata"]["name"]): d for d in self.docs}
        self.pods = self._pods()

    # --- pods -------------------------------------------------------------------------------------
    def _pods(self):
        pods = []
        for d in self.docs:
            kind, name, spec = d["kind"], d["metadata"]["name"], d.get("spec", {})
            if kind == "StatefulSet":
                for i in range(spec.get("replicas", 1)):
                    labels = dict(spec["template"]["metadata"]["labels"])
                    labels["statefulset.kubernetes.io/pod-name"] = f"{name}-{i}"
                    labels["apps.kubernetes.io/pod-index"] = str(i)
                    pods.append({"name": f"{name}-{i}", "kind": kind, "owner": name, "labels": labels,
                                 "spec": spec["template"]["spec"], "service": spec.get("serviceName"),
                                 "claims": [c["metadata"]["name"] for c in spec.get("volumeClaimTemplates", [])]})
            elif kind == "Deployment":
                for i in range(spec.get("replicas", 1)):
                    pods.append({"name": name if i == 0 else f"{name}-{i}", "kind": kind, "owner": name,
                                 "labels": dict(spec["template"]["metadata"]["labels"]),
                                 "spec": spec["template"]["spec"], "claims": []})
            elif kind == "CronJob":
                t = spec["jobTemplate"]["spec"]["template"]
                pods.append({"name": name, "kind": kind, "owner": name, "labels": dict(t["metadata"]["labels"]),
                             "spec": t["spec"], "claims": [], "job": True})
        for i, p in enumerate(pods):
            p["ip"] = f"{self.a.subnet}.{self.a.pod_base + 1 + i}"
            p["netns"] = self.netns_name(p["name"])
        return pods

    def pod(self, name):
        for p in self.pods:
            if p["name"] == name:
                return p
        die(f"no pod {name} in {self.a.manifest} (pods: {', '.join(p['name'] for p in self.pods)})")

    def service_ip(self, svc):
        """The first pod a Service selects (Services resolve to pod addresses here: no kube-proxy)."""
        sel = svc["spec"].get("selector", {})
        for p in self.pods:
            if not p.get("job") and sel and all(p["labels"].get(k) == v for k, v in sel.items()):
                return p["ip"]
        return None

    def hosts_file(self):
        lines = ["127.0.0.1 localhost"]
        suffixes = ["", f".{self.ns}", f".{self.ns}.svc", f".{self.ns}.svc.cluster.local"]
        for d in self.docs:
            if d["kind"] == "Service":
                ip = self.service_ip(d)
                if ip:
                    lines.append(ip + " " + " ".join(d["metadata"]["name"] + s for s in suffixes))
        for p in self.pods:
            if p.get("service"):
                lines.append(p["ip"] + " " + " ".join(f"{p['name']}.{p['service']}" + s for s in suffixes))
        return "\n".join(lines) + "\n"

    # --- values ---------------------------------------------------------------------------------
    def secret_data(self, name):
        obj = self.objs.get(("Secret", name)) or die(f"pod refers to Secret {name}: not rendered")
        data = {k: base64.b64decode(v) for k, v in obj.get("data", {}).items()}
        data.update({k: v.encode() for k, v in obj.get("stringData", {}).items()})
        for v in data.values():
            if b"NODECTL-PLACEHOLDER" in v:
                die(f"Secret {name} holds placeholders: render with --out and real secrets")
        return data

    def config_data(self, name):
        obj = self.objs.get(("ConfigMap", name)) or die(f"pod refers to ConfigMap {name}: not rendered")
        return {k: v.encode() for k, v in obj.get("data", {}).items()}

    @staticmethod
    def expand(s, env):
        """Kubernetes' $(VAR) expansion: $$ is a literal $, an unknown $(X) stays as it is."""
        return re.sub(r"\$\$|\$\(([A-Za-z_][A-Za-z0-9_]*)\)",
                      lambda m: "$" if m.group(0) == "$$" else env.get(m.group(1), m.group(0)), s)

    def field_ref(self, pod, path):
        m = re.fullmatch(r"metadata\.labels\['([^']+)'\]", path)
        if m:
            return pod["labels"].get(m.group(1), "")
        fields = {"metadata.name": pod["name"], "metadata.namespace": self.ns, "status.podIP": pod["ip"],
                  "spec.nodeName": "podrun", "spec.serviceAccountName": "default"}
        if path not in fields:
            die(f"fieldRef {path}: not supported by the runner")
        return fields[path]

    def env(self, pod, c):
        env = {}
        for ef in c.get("envFrom", []):
            pre = ef.get("prefix", "")
            if "configMapRef" in ef:
                env.update({pre + k: v.decode() for k, v in self.config_data(ef["configMapRef"]["name"]).items()})
            if "secretRef" in ef:
                env.update({pre + k: v.decode() for k, v in self.secret_data(ef["secretRef"]["name"]).items()})
        for e in c.get("env", []):
            if "value" in e:
                env[e["name"]] = self.expand(e["value"], env)
            elif "valueFrom" in e:
                vf = e["valueFrom"]
                if "secretKeyRef" in vf:
                    r = vf["secretKeyRef"]
                    env[e["name"]] = self.secret_data(r["name"])[r["key"]].decode()
                elif "configMapKeyRef" in vf:
                    r = vf["configMapKeyRef"]
                    env[e["name"]] = self.config_data(r["name"])[r["key"]].decode()
                elif "fieldRef" in vf:
                    env[e["name"]] = self.field_ref(pod, vf["fieldRef"]["fieldPath"])
                else:
                    die(f"env {e['name']}: valueFrom {list(vf)} not supported")
            else:
                env[e["name"]] = ""
        return env

    # --- volumes --------------------------------------------------------------------------------
    def volumes(self, pod):
        """name -> (host path, always read-only?)"""
        base = os.path.join(self.a.state, "pods", pod["name"])
        out = {}
        for v in pod["spec"].get("volumes", []):
            path = os.path.join(base, "volumes", v["name"])
            if "secret" in v or "configMap" in v:
                src = v.get("secret") or v.get("configMap")
                data = self.secret_data(src["secretName"]) if "secret" in v else self.config_data(src["name"])
                mode = src.get("defaultMode", 0o644)
                items = src.get("items") or [{"key": k, "path": k} for k in sorted(data)]
                os.makedirs(path, mode=0o755, exist_ok=True)
                os.chmod(path, 0o755)
                for it in items:
                    f = os.path.join(path, it["path"])
                    os.makedirs(os.path.dirname(f), exist_ok=True)
                    with open(f, "wb") as fh:
                        fh.write(data[it["key"]])
                    os.chmod(f, it.get("mode", mode))
                out[v["name"]] = (path, True)
            elif "emptyDir" in v:
                os.makedirs(path, exist_ok=True)
                os.chmod(path, 0o777)
                out[v["name"]] = (path, False)
            elif "hostPath" in v:
                out[v["name"]] = (v["hostPath"]["path"], False)
            elif "persistentVolumeClaim" in v:   # a Deployment's claim (local-path: a directory, 0777)
                path = os.path.join(self.a.state, "pvc", v["persistentVolumeClaim"]["claimName"])
                os.makedirs(path, exist_ok=True)
                os.chmod(path, 0o777)
                out[v["name"]] = (path, False)
            else:
                die(f"volume {v['name']}: kind {list(v)} not supported")
        for claim in pod["claims"]:        # the StatefulSet's PVCs (local-path: a directory, 0777)
            path = os.path.join(self.a.state, "pvc", f"{claim}-{pod['name']}")
            os.makedirs(path, exist_ok=True)
            os.chmod(path, 0o777)
            out[claim] = (path, False)
        return out

    # --- images ----------------------------------------------------------------------------------
    def ctr(self, *args, check=True, capture=True, **kw):
        cmd = ["ctr", "-a", self.a.address, "-n", self.a.namespace, *args]
        r = subprocess.run(cmd, capture_output=capture, **kw)
        if check and r.returncode != 0:
            die(f"{' '.join(cmd[:8])}...: exit {r.returncode}: {(r.stderr or b'').decode().strip()}")
        return r

    def image_config(self, ref):
        ls = self.ctr("images", "ls").stdout.decode().splitlines()
        digest = next((l.split()[2] for l in ls[1:] if l.split()[0] == ref), None) or die(f"image {ref} is not in containerd")
        if "@" in ref and digest != ref.split("@", 1)[1]:
            die(f"image {ref} is in containerd with another manifest ({digest})")
        blob = json.loads(self.ctr("content", "get", digest).stdout)
        if "manifests" in blob:       # an index: this machine's platform
            blob = json.loads(self.ctr("content", "get", blob["manifests"][0]["digest"]).stdout)
        return json.loads(self.ctr("content", "get", blob["config"]["digest"]).stdout).get("config", {})

    # --- containers ------------------------------------------------------------------------------
    def container_args(self, pod, c, override=None):
        cid = f"{self.a.prefix}-{pod['name']}-{c['name']}"
        env = self.env(pod, c)
        sc = dict(pod["spec"].get("securityContext", {}))
        sc.update(c.get("securityContext", {}))
        for k in ("runAsUser", "runAsGroup"):
            if sc.get(k, 0) != 0:
                die(f"{cid}: {k} {sc[k]}: ctr 1.6 cannot set it (the runner supports 0 or unset)")
        if sc.get("runAsNonRoot"):
            die(f"{cid}: runAsNonRoot with the images' root user would not start")
        if sc.get("privileged"):
            die(f"{cid}: privileged containers are not run")
        opts = ["run", "-d", "--with-ns", f"network:/run/netns/{self.netns(pod)}",
                "--log-uri", f"file://{self.a.state}/logs/{pod['name']}_{c['name']}.log"]
        if sc.get("readOnlyRootFilesystem"):
            opts.append("--read-only")
        if sc.get("allowPrivilegeEscalation", True) is not False:
            opts.append("--allow-new-privs")
        if sc.get("seccompProfile", {}).get("type") == "RuntimeDefault":
            opts.append("--seccomp")
        elif sc.get("seccompProfile"):
            die(f"{cid}: seccompProfile {sc['seccompProfile']} not supported")
        caps = sc.get("capabilities", {})
        drop, add = set(caps.get("drop", [])), set(caps.get("add", []))
        final = add if "ALL" in drop else (set(DEFAULT_CAPS) - drop) | add
        for cap in ALL_CAPS:
            opts += ["--cap-add" if cap in final else "--cap-drop", f"CAP_{cap}"]
        lim = c.get("resources", {}).get("limits", {})
        if "memory" in lim:
            opts += ["--memory-limit", str(quantity(lim["memory"]))]
        if "cpu" in lim:
            opts += ["--cpus", str(quantity(lim["cpu"], cpu=True))]
        opts += ["--mount", f"type=bind,src={self.a.state}/hosts,dst=/etc/hosts,options=rbind:ro"]
        if self.a.resolv:
            opts += ["--mount", f"type=bind,src={self.a.state}/resolv.conf,dst=/etc/resolv.conf,options=rbind:ro"]
        vols = self.volumes(pod)
        for m in c.get("volumeMounts", []):
            src, ro = vols.get(m["name"]) or die(f"{cid}: volumeMount {m['name']}: no such volume")
            if m.get("subPath"):
                src = os.path.join(src, m["subPath"])
            mode = "ro" if ro or m.get("readOnly") else "rw"
            opts += ["--mount", f"type=bind,src={src},dst={m['mountPath']},options=rbind:{mode}"]
        if c.get("workingDir"):
            opts += ["--cwd", c["workingDir"]]
        for k in sorted(env):
            opts += ["--env", f"{k}={env[k]}"]
        # Kubernetes: command replaces the image's entrypoint (and drops its cmd), args its cmd.
        image = cri_name(c["image"])
        img = self.image_config(image)
        entry = c["command"] if "command" in c else img.get("Entrypoint") or []
        cargs = c["args"] if "args" in c else ([] if "command" in c else img.get("Cmd") or [])
        argv = [self.expand(x, env) for x in entry] + [self.expand(x, env) for x in cargs]
        if override:
            argv = override
        return cid, opts + [image, cid] + argv, env

    def netns_name(self, name):
        return f"{self.a.prefix}-{name}"[:40]

    @staticmethod
    def netns(pod):
        """A Job's pods (run-job --name) share the CronJob pod's namespace and address."""
        return pod["netns"]

    def run_to_end(self, pod, c, override=None):
        """Runs one container to its end (a Job's or an init container): its exit status."""
        _, argv, _ = self.container_args(pod, c, override)
        argv = ["--rm" if x == "-d" else x for x in argv]
        k = argv.index("--log-uri")
        del argv[k:k + 2]
        with open(os.path.join(self.a.state, "logs", f"{pod['name']}_{c['name']}.log"), "ab") as f:
            return self.ctr(*argv, check=False, capture=False, stdout=f, stderr=f, timeout=self.a.limit).returncode

    def start(self, pod, override=None, wait=False):
        """Starts the pod's containers (detached) after its init containers, or with wait runs its
        one container to the end and returns its exit status (a Job's pod)."""
        os.makedirs(os.path.join(self.a.state, "logs"), exist_ok=True)
        if not os.path.exists(os.path.join(self.a.state, "hosts")):   # on another runner's bridge
            self.write_files()
        self.pod_net(pod)
        for c in pod["spec"].get("initContainers", []):
            rc = self.run_to_end(pod, c)
            if rc != 0:
                die(f"{pod['name']}: init container {c['name']} exited {rc}")
        if wait:
            return self.run_to_end(pod, pod["spec"]["containers"][0], override)
        started = []
        for c in pod["spec"]["containers"]:
            cid, argv, _ = self.container_args(pod, c, override)
            self.ctr(*argv)
            started.append(cid)
        return started

    # --- network ---------------------------------------------------------------------------------
    def sh(self, *cmd, check=True):
        r = subprocess.run(cmd, capture_output=True)
        if check and r.returncode != 0:
            die(f"{' '.join(cmd)}: {r.stderr.decode().strip()}")
        return r

    def net_up(self):
        cl, p = f"{self.a.prefix}-cl", self.a.prefix
        self.sh("ip", "netns", "add", cl)
        self.sh("ip", "-n", cl, "link", "add", "br0", "type", "bridge")
        self.sh("ip", "-n", cl, "link", "set", "br0", "up")
        self.sh("ip", "-n", cl, "link", "set", "lo", "up")
        self.sh("ip", "link", "add", f"{p}h", "type", "veth", "peer", "name", "uplink", "netns", cl)
        self.sh("ip", "-n", cl, "link", "set", "uplink", "master", "br0", "up")
        self.sh("ip", "addr", "add", f"{self.a.subnet}.1/24", "dev", f"{p}h")
        self.sh("ip", "link", "set", f"{p}h", "up")
        self.write_files()

    def write_files(self):
        """/etc/hosts (and with --resolv, /etc/resolv.conf) of the pods."""
        with open(os.path.join(self.a.state, "hosts"), "w") as f:
            f.write(self.hosts_file())
        if self.a.resolv:
            with open(os.path.join(self.a.state, "resolv.conf"), "w") as f:
                f.write(f"nameserver {self.a.resolv}\n")

    def bridge_ns(self):
        return self.a.bridge or f"{self.a.prefix}-cl"

    def pod_net(self, pod):
        ns, cl = self.netns(pod), self.bridge_ns()
        if os.path.exists(f"/run/netns/{ns}"):
            return
        idx = int(pod["ip"].rsplit(".", 1)[1])
        self.sh("ip", "netns", "add", ns)
        self.sh("ip", "-n", ns, "link", "set", "lo", "up")
        self.sh("ip", "-n", ns, "link", "add", "eth0", "type", "veth", "peer", "name", f"v{idx}", "netns", cl)
        self.sh("ip", "-n", cl, "link", "set", f"v{idx}", "master", "br0", "up")
        self.sh("ip", "-n", ns, "addr", "add", f"{pod['ip']}/24", "dev", "eth0")
        self.sh("ip", "-n", ns, "link", "set", "eth0", "up")

    def net_down(self):
        for name in os.listdir("/run/netns") if os.path.isdir("/run/netns") else []:
            if name.startswith(self.a.prefix + "-"):
                self.sh("ip", "netns", "del", name, check=False)
        self.sh("ip", "link", "del", f"{self.a.prefix}h", check=False)

    def running(self, cid):
        r = self.ctr("task", "ls", check=False).stdout.decode().splitlines()
        return any(l.split()[0] == cid and "RUNNING" in l for l in r[1:])

    def stop(self, cid):
        self.ctr("task", "kill", cid, check=False)
        for _ in range(60):
            if not self.running(cid):
                break
            time.sleep(0.5)
        self.ctr("task", "kill", "-s", "SIGKILL", cid, check=False)
        self.ctr("task", "delete", cid, check=False)
        self.ctr("container", "rm", cid, check=False)

    # --- probes ----------------------------------------------------------------------------------
    def probe_once(self, pod, c, probe):
        def port(p):
            if isinstance(p, int):
                return p
            return next(x["containerPort"] for x in c.get("ports", []) if x.get("name") == p)
        t = probe.get("timeoutSeconds", 1)
        try:
            if "tcpSocket" in probe:
                socket.create_connection((pod["ip"], port(probe["tcpSocket"]["port"])), timeout=t).close()
                return True
            if "httpGet" in probe:
                g = probe["httpGet"]
                url = f"{g.get('scheme', 'HTTP').lower()}://{pod['ip']}:{port(g['port'])}{g.get('path', '/')}"
                with urllib.request.urlopen(url, timeout=t) as r:
                    return 200 <= r.status < 400
            if "exec" in probe:
                cid = f"{self.a.prefix}-{pod['name']}-{c['name']}"
                return self.ctr("task", "exec", "--exec-id", f"probe{time.time_ns()}", cid,
                                *probe["exec"]["command"], check=False, timeout=t + 5).returncode == 0
        except (OSError, subprocess.TimeoutExpired, StopIteration):
            return False
        die(f"probe {probe}: kind not supported")

    def probe(self, pod, kind, limit):
        for c in pod["spec"]["containers"]:
            p = c.get(f"{kind}Probe")
            if not p:
                print(f"{pod['name']}/{c['name']}: no {kind} probe")
                continue
            tries = p.get("failureThreshold", 3)
            time.sleep(min(p.get("initialDelaySeconds", 0), limit))
            deadline = time.monotonic() + min(tries * p.get("periodSeconds", 10), limit)
            n = 0
            while True:
                n += 1
                if self.probe_once(pod, c, p):
                    print(f"{pod['name']}/{c['name']}: {kind} probe succeeded (attempt {n})")
                    break
                if time.monotonic() >= deadline:
                    print(f"{pod['name']}/{c['name']}: {kind} probe failed {n} times")
                    return False
                if not self.running(f"{self.a.prefix}-{pod['name']}-{c['name']}"):
                    print(f"{pod['name']}/{c['name']}: {kind} probe failed {n} times; the container has exited")
                    return False
                time.sleep(min(p.get("periodSeconds", 10), 1.0))   # faster than kubelet; same verdict
        return True


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--manifest", required=True)
    ap.add_argument("--state", required=True)
    ap.add_argument("--address", required=True)
    ap.add_argument("--namespace", required=True)
    ap.add_argument("--prefix", required=True)
    ap.add_argument("--subnet", default="198.18.31")
    ap.add_argument("--limit", type=float, default=600, help="longest a probe is waited for (seconds)")
    ap.add_argument("--pod-base", type=int, default=POD_BASE, help="pods get SUBNET.(BASE+1+i)")
    ap.add_argument("--bridge", help="put the pods on this bridge namespace (another runner's PREFIX-cl): no net-up")
    ap.add_argument("--resolv", help="a DNS server address for the pods' /etc/resolv.conf (cluster DNS's place)")
    ap.add_argument("cmd")
    ap.add_argument("rest", nargs=argparse.REMAINDER)
    a = ap.parse_args()
    if not re.fullmatch(r"198\.1[89]\.\d{1,3}", a.subnet):
        die("--subnet must be in 198.18.0.0/15")
    os.makedirs(a.state, exist_ok=True)
    s = Site(a)
    if a.cmd == "plan":
        print(json.dumps([{"name": p["name"], "ip": p["ip"], "kind": p["kind"],
                           "containers": [c["name"] for c in p["spec"]["containers"]]} for p in s.pods], indent=1))
    elif a.cmd == "endpoint":     # SERVICE PORT -> POD_IP:TARGETPORT, what kube-proxy would pick
        svc = s.objs.get(("Service", a.rest[0])) or die(f"no Service {a.rest[0]}")
        sp = next((x for x in svc["spec"]["ports"] if str(x["port"]) == a.rest[1] or x.get("name") == a.rest[1]), None) \
            or die(f"Service {a.rest[0]} has no port {a.rest[1]}")
        pod = next(p for p in s.pods if p["ip"] == s.service_ip(svc))
        tp = sp.get("targetPort", sp["port"])
        if not isinstance(tp, int):
            tp = next(x["containerPort"] for c in pod["spec"]["containers"] for x in c.get("ports", []) if x.get("name") == tp)
        print(f"{pod['ip']}:{tp}")
    elif a.cmd == "hosts":
        sys.stdout.write(s.hosts_file())
    elif a.cmd == "net-up":
        s.net_up()
    elif a.cmd == "net-down":
        s.net_down()
    elif a.cmd == "start":
        if a.rest[1:2] == ["--as"]:       # one more pod of the same template, its own name, address, volumes
            pod = dict(s.pod(a.rest[0]), name=a.rest[2], ip=f"{a.subnet}.{a.pod_base + 1 + len(s.pods)}",
                       netns=s.netns_name(a.rest[2]))
            print("\n".join(s.start(pod)), pod["ip"])
        else:
            for name in a.rest:
                print("\n".join(s.start(s.pod(name))))
    elif a.cmd == "args":        # the ctr arguments of a pod's containers, env values masked
        for c in s.pod(a.rest[0])["spec"]["containers"]:
            _, argv, _ = s.container_args(s.pod(a.rest[0]), c)
            print(" ".join(re.sub(r"^([A-Z_]+)=.*", r"\1=...", x) for x in argv))
    elif a.cmd == "probe":
        sys.exit(0 if s.probe(s.pod(a.rest[0]), a.rest[1], a.limit) else 1)
    elif a.cmd == "run-job":
        name, override = a.rest[0], None
        rest = a.rest[1:]
        job = f"{name}-job"
        if rest[:1] == ["--name"]:
            job, rest = rest[1], rest[2:]
        if rest[:1] == ["--"]:
            override = rest[1:]
        sys.exit(s.start(dict(s.pod(name), name=job), override, wait=True))
    elif a.cmd == "stop":
        for name in a.rest:
            for c in s.pod(name)["spec"]["containers"]:
                s.stop(f"{a.prefix}-{name}-{c['name']}")
    elif a.cmd == "stop-all":
        r = s.ctr("containers", "ls", "-q", check=False).stdout.decode().split()
        for cid in r:
            if cid.startswith(a.prefix + "-"):
                s.stop(cid)
    else:
        die(f"unknown command {a.cmd}")


if __name__ == "__main__":
    main()
