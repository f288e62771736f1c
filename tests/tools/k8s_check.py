#!/usr/bin/env python3
"""Offline checks of Kubernetes manifests (what `nodectl stack render` writes).

  k8s_check.py [--schemas DIR] [--expect-paths FILE] [--image-prefix P]... [--single NAME]... FILE.yaml...

1. Schemas: every document validates (Draft 7) against the standalone-strict Kubernetes v1.32.2
   schema of its kind (tests/data/k8s/), so an unknown or misspelt field fails; a kind without a
   schema fails too.
2. Cross-references the schemas cannot see, per namespace: workload selectors match their pod
   templates; Service selectors match a pod template and targetPorts exist on its containers;
   probe ports exist on the container; secretKeyRef/configMapKeyRef/envFrom/secret and configMap
   volumes name rendered objects and keys; volumeMounts name volumes; StatefulSet serviceName is a
   rendered headless Service; PVCs use local-path (the class a k3s node has); the HPA targets a
   rendered Deployment whose containers all request CPU; PDB and NetworkPolicy selectors select
   rendered pods; Ingress backends are rendered Service ports, TLS secrets are kubernetes.io/tls
   Secrets, Traefik middleware annotations name rendered Middlewares.
3. Every container: requests and limits for cpu and memory, seccomp RuntimeDefault, capabilities
   drop ALL and add only from a short list, no privilege escalation, not privileged; images start
   with one of --image-prefix when given.
4. With --expect-paths: the pod-to-pod paths the NetworkPolicies allow (ingress at the destination
   AND egress at the source) are exactly the lines of FILE: "SRC -> DST:PORT" inside a namespace,
   "NS/SRC -> NS/DST:PORT" from one namespace to another (app.kubernetes.io/name labels).
5. With --single NAME, in each namespace of a Magento site: the workload whose pods are app.kubernetes.io/name=NAME can never run two
   pods at once: a StatefulSet of exactly one replica (its controller starts a successor only once
   the old pod is gone) or a CronJob with concurrencyPolicy Forbid; and exactly one such workload.

Exit 0 when all pass, 1 with one line per problem.
"""
import argparse
import json
import os
import sys

import jsonschema
import yaml

HERE = os.path.dirname(os.path.abspath(__file__))
DEFAULT_SCHEMAS = os.path.join(HERE, "..", "data", "k8s")
K3S_STORAGE_CLASSES = {"local-path"}
ALLOWED_CAPS = {"CHOWN", "DAC_OVERRIDE", "FOWNER", "SETGID", "SETUID", "KILL"}
WORKLOADS = ("Deployment", "StatefulSet", "CronJob")

problems = []


def problem(doc, msg):
    md = doc.get("metadata", {}) if isinstance(doc, dict) else {}
    problems.append(f"{doc.get('kind', '?')}/{md.get('namespace', '')}/{md.get('name', '?')}: {msg}")


def schema_path(root, doc):
    api = doc.get("apiVersion", "")
    kind = str(doc.get("kind", "")).lower()
    if "/" in api:
        group, version = api.split("/", 1)
    else:
        group, version = "", api
    if group.endswith(".k8s.io") or "." not in group:
        name = f"{kind}-{group.split('.')[0]}-{version}.json" if group else f"{kind}-{version}.json"
        return os.path.join(root, "v1.32.2-standalone-strict", name)
    return os.path.join(root, "crds", group, f"{kind}_{version}.json")


_schemas = {}


def validate_schema(root, doc):
    path = schema_path(root, doc)
    if not os.path.exists(path):
        problem(doc, f"no schema for {doc.get('apiVersion')} {doc.get('kind')} ({os.path.relpath(path, root)}): kind not allowed")
        return
    if path not in _schemas:
        with open(path) as f:
            _schemas[path] = jsonschema.Draft7Validator(json.load(f))
    for err in sorted(_schemas[path].iter_errors(doc), key=lambda e: list(e.absolute_path)):
        where = "/".join(str(p) for p in err.absolute_path)
        problem(doc, f"schema: {where}: {err.message}")


def matches(selector, labels):
    return all(labels.get(k) == v for k, v in (selector or {}).items())


class Namespace:
    def __init__(self, name):
        self.name = name
        self.docs = []
        self.templates = []  # (owner doc, pod template)

    def by_kind(self, kind):
        return [d for d in self.docs if d.get("kind") == kind]

    def find(self, kind, name):
        for d in self.by_kind(kind):
            if d["metadata"].get("name") == name:
                return d
        return None

    def pods_matching(self, selector):
        return [t for _, t in self.templates if matches(selector, t.get("metadata", {}).get("labels", {}))]


def pod_template(doc):
    spec = doc.get("spec", {})
    if doc["kind"] == "CronJob":
        return spec.get("jobTemplate", {}).get("spec", {}).get("template")
    return spec.get("template")


def data_keys(doc):
    return set((doc.get("data") or {}).keys()) | set((doc.get("stringData") or {}).keys())


def container_port(container, port):
    for p in container.get("ports", []):
        if p.get("name") == port or p.get("containerPort") == port:
            return True
    return False


def check_container(ns, doc, c, volumes, prefixes):
    name = c.get("name")
    res = c.get("resources", {})
    for part in ("requests", "limits"):
        for r in ("cpu", "memory"):
            if r not in res.get(part, {}):
                problem(doc, f"container {name}: no resources.{part}.{r}")
    sc = c.get("securityContext", {})
    if sc.get("seccompProfile", {}).get("type") != "RuntimeDefault":
        problem(doc, f"container {name}: seccompProfile is not RuntimeDefault")
    caps = sc.get("capabilities", {})
    if "ALL" not in caps.get("drop", []):
        problem(doc, f"container {name}: capabilities do not drop ALL")
    extra = set(caps.get("add", [])) - ALLOWED_CAPS
    if extra:
        problem(doc, f"container {name}: adds capabilities {sorted(extra)}")
    if sc.get("allowPrivilegeEscalation") is not False:
        problem(doc, f"container {name}: allowPrivilegeEscalation is not false")
    if sc.get("privileged"):
        problem(doc, f"container {name}: privileged")
    if prefixes and not any(c.get("image", "").startswith(p) for p in prefixes):
        problem(doc, f"container {name}: image {c.get('image')} is not one the profile builds or names")
    for probe in ("startupProbe", "readinessProbe", "livenessProbe"):
        p = c.get(probe)
        if not p:
            continue
        for handler in ("httpGet", "tcpSocket", "grpc"):
            if handler in p and not container_port(c, p[handler].get("port")):
                problem(doc, f"container {name}: {probe} port {p[handler].get('port')} is not a port of the container")
    for e in c.get("env", []):
        ref = e.get("valueFrom", {})
        for kind, key in (("Secret", "secretKeyRef"), ("ConfigMap", "configMapKeyRef")):
            if key in ref:
                obj = ns.find(kind, ref[key].get("name"))
                if obj is None:
                    problem(doc, f"container {name}: env {e['name']} refers to {kind} {ref[key].get('name')}, not rendered")
                elif ref[key].get("key") not in data_keys(obj):
                    problem(doc, f"container {name}: env {e['name']} refers to key {ref[key].get('key')} missing from {kind} {obj['metadata']['name']}")
    for src in c.get("envFrom", []):
        for kind, key in (("Secret", "secretRef"), ("ConfigMap", "configMapRef")):
            if key in src and ns.find(kind, src[key].get("name")) is None:
                problem(doc, f"container {name}: envFrom {kind} {src[key].get('name')} is not rendered")
    for m in c.get("volumeMounts", []):
        if m.get("name") not in volumes:
            problem(doc, f"container {name}: volumeMount {m.get('name')} names no volume")


def check_volumes(ns, doc, volumes):
    for v in volumes.values():
        for kind, key, ref in (("Secret", "secret", "secretName"), ("ConfigMap", "configMap", "name")):
            if key not in v:
                continue
            obj = ns.find(kind, v[key].get(ref))
            if obj is None:
                problem(doc, f"volume {v['name']}: {kind} {v[key].get(ref)} is not rendered")
                continue
            for item in v[key].get("items", []):
                if item.get("key") not in data_keys(obj):
                    problem(doc, f"volume {v['name']}: key {item.get('key')} missing from {kind} {v[key].get(ref)}")


def check_workload(ns, doc, prefixes):
    t = pod_template(doc)
    if t is None:
        problem(doc, "no pod template")
        return
    labels = t.get("metadata", {}).get("labels", {})
    if doc["kind"] != "CronJob":
        sel = doc["spec"].get("selector", {}).get("matchLabels")
        if not sel or not matches(sel, labels):
            problem(doc, "spec.selector does not match the pod template's labels")
    spec = t.get("spec", {})
    volumes = {v["name"]: v for v in spec.get("volumes", [])}
    if doc["kind"] == "StatefulSet":
        svc = ns.find("Service", doc["spec"].get("serviceName"))
        if svc is None or svc["spec"].get("clusterIP") != "None":
            problem(doc, f"serviceName {doc['spec'].get('serviceName')} is not a rendered headless Service")
        for claim in doc["spec"].get("volumeClaimTemplates", []):
            volumes[claim["metadata"]["name"]] = {"name": claim["metadata"]["name"]}
            if claim["spec"].get("storageClassName") not in K3S_STORAGE_CLASSES:
                problem(doc, f"volumeClaimTemplate {claim['metadata']['name']}: storage class {claim['spec'].get('storageClassName')} is not one a k3s node has")
    check_volumes(ns, doc, volumes)
    for c in spec.get("initContainers", []) + spec.get("containers", []):
        check_container(ns, doc, c, volumes, prefixes)


def check_service(ns, doc):
    sel = doc["spec"].get("selector")
    pods = ns.pods_matching(sel) if sel else []
    if not pods:
        problem(doc, f"selector {sel} matches no rendered pod template")
        return
    for p in doc["spec"].get("ports", []):
        target = p.get("targetPort", p.get("port"))
        if not any(container_port(c, target) for t in pods for c in t["spec"].get("containers", [])):
            problem(doc, f"targetPort {target} is not a port of the selected pods' containers")


def check_ingress(ns, doc):
    mw = doc["metadata"].get("annotations", {}).get("traefik.ingress.kubernetes.io/router.middlewares")
    if mw:
        for ref in mw.split(","):
            name = ref.strip().removesuffix("@kubernetescrd")
            prefix = doc["metadata"]["namespace"] + "-"
            if not name.startswith(prefix) or ns.find("Middleware", name[len(prefix):]) is None:
                problem(doc, f"middleware {ref} is not a rendered Middleware")
    for t in doc["spec"].get("tls", []):
        s = ns.find("Secret", t.get("secretName"))
        if s is None or s.get("type") != "kubernetes.io/tls":
            problem(doc, f"tls secret {t.get('secretName')} is not a rendered kubernetes.io/tls Secret")
    for rule in doc["spec"].get("rules", []):
        for path in rule.get("http", {}).get("paths", []):
            svc_ref = path["backend"]["service"]
            svc = ns.find("Service", svc_ref["name"])
            if svc is None:
                problem(doc, f"backend Service {svc_ref['name']} is not rendered")
                continue
            port = svc_ref["port"]
            if not any(p.get("port") == port.get("number") or (port.get("name") and p.get("name") == port.get("name"))
                       for p in svc["spec"]["ports"]):
                problem(doc, f"backend port {port} is not a port of Service {svc_ref['name']}")


def check_hpa(ns, doc):
    ref = doc["spec"]["scaleTargetRef"]
    target = ns.find(ref.get("kind"), ref.get("name"))
    if target is None or ref.get("kind") != "Deployment" or ref.get("apiVersion") != "apps/v1":
        problem(doc, f"scaleTargetRef {ref} is not a rendered apps/v1 Deployment")
        return
    uses_cpu = any(m.get("type") == "Resource" and m["resource"]["name"] == "cpu" for m in doc["spec"].get("metrics", []))
    if uses_cpu:
        for c in pod_template(target)["spec"]["containers"]:
            if "cpu" not in c.get("resources", {}).get("requests", {}):
                problem(doc, f"target {ref['name']} container {c['name']} requests no CPU: utilization cannot be computed")


def peer_matches(peer, labels, other_ns, own_ns):
    """Whether a NetworkPolicy peer of a policy in own_ns selects a pod (labels) of other_ns."""
    if "ipBlock" in peer:
        return False  # addresses: not a rendered pod
    if "namespaceSelector" in peer:
        if not matches(peer["namespaceSelector"].get("matchLabels"), {"kubernetes.io/metadata.name": other_ns}):
            return False
    elif other_ns != own_ns:
        return False
    return matches(peer.get("podSelector", {}).get("matchLabels"), labels)


def check_network_policy(ns, doc):
    sel = doc["spec"].get("podSelector", {}).get("matchLabels")
    if sel and not ns.pods_matching(sel):
        problem(doc, f"podSelector {sel} selects no rendered pod")
    for direction, key in (("ingress", "from"), ("egress", "to")):
        for rule in doc["spec"].get(direction, []):
            for peer in rule.get(key, []):
                if "namespaceSelector" in peer or "ipBlock" in peer:
                    continue
                psel = peer.get("podSelector", {}).get("matchLabels")
                if psel and not ns.pods_matching(psel):
                    problem(doc, f"{direction} peer {psel} selects no rendered pod")


def allowed(subject_ns, subject, other_ns, other, port, direction):
    """Whether the policies of subject_ns let `other` reach `subject` (ingress) or `subject`
    reach `other` (egress) on port."""
    key = "from" if direction == "ingress" else "to"
    policies = [p for p in subject_ns.by_kind("NetworkPolicy")
                if matches(p["spec"].get("podSelector", {}).get("matchLabels"), subject)
                and direction.capitalize() in p["spec"].get("policyTypes", [])]
    if not policies:
        return True  # not isolated
    for p in policies:
        for rule in p["spec"].get(direction, []):
            peers = rule.get(key)
            if peers and not any(peer_matches(peer, other, other_ns, subject_ns.name) for peer in peers):
                continue
            ports = rule.get("ports")
            if ports and not any(pp.get("port") == port and pp.get("protocol", "TCP") == "TCP" for pp in ports):
                continue
            return True
    return False


def network_paths(namespaces):
    """Every pod-to-pod path the policies allow: "SRC -> DST:PORT" inside a namespace,
    "NS/SRC -> NS/DST:PORT" across two."""
    out = set()
    pods = [(ns, t["metadata"]["labels"], t) for ns in namespaces for _, t in ns.templates]
    for src_ns, src, _ in pods:
        for dst_ns, dst, t in pods:
            if dst is src:
                continue
            for c in t["spec"]["containers"]:
                for p in c.get("ports", []):
                    port = p.get("containerPort")
                    if allowed(dst_ns, dst, src_ns.name, src, port, "ingress") and allowed(src_ns, src, dst_ns.name, dst, port, "egress"):
                        s, d = src.get("app.kubernetes.io/name"), dst.get("app.kubernetes.io/name")
                        if src_ns is not dst_ns:
                            s, d = f"{src_ns.name}/{s}", f"{dst_ns.name}/{d}"
                        out.add(f"{s} -> {d}:{port}")
    return out


def check_single(ns, name):
    owners = [d for d, t in ns.templates if t.get("metadata", {}).get("labels", {}).get("app.kubernetes.io/name") == name]
    if len(owners) != 1:
        problems.append(f"single {name}: {len(owners)} workloads run its pods, want exactly 1")
        return
    d = owners[0]
    if d["kind"] == "StatefulSet":
        if d["spec"].get("replicas") != 1:
            problem(d, f"single {name}: replicas is {d['spec'].get('replicas')}, want 1")
        if d["spec"].get("updateStrategy", {}).get("type", "RollingUpdate") != "RollingUpdate":
            problem(d, f"single {name}: updateStrategy {d['spec']['updateStrategy'].get('type')} does not replace the pod itself")
    elif d["kind"] == "CronJob":
        if d["spec"].get("concurrencyPolicy") != "Forbid":
            problem(d, f"single {name}: concurrencyPolicy is {d['spec'].get('concurrencyPolicy')}, want Forbid")
    else:
        problem(d, f"single {name}: a {d['kind']} may run two pods (a successor starts before a lost node's pod is gone)")


def check_namespace(ns, args):
    for d in ns.docs:
        if d.get("kind") in WORKLOADS and pod_template(d):
            ns.templates.append((d, pod_template(d)))
    for d in ns.docs:
        kind = d.get("kind")
        if kind in WORKLOADS:
            check_workload(ns, d, args.image_prefix)
        elif kind == "Service":
            check_service(ns, d)
        elif kind == "Ingress":
            check_ingress(ns, d)
        elif kind == "HorizontalPodAutoscaler":
            check_hpa(ns, d)
        elif kind == "PodDisruptionBudget":
            if not ns.pods_matching(d["spec"].get("selector", {}).get("matchLabels")):
                problem(d, "selector selects no rendered pod")
        elif kind == "NetworkPolicy":
            check_network_policy(ns, d)
        elif kind == "PersistentVolumeClaim" and d["spec"].get("storageClassName") not in K3S_STORAGE_CLASSES:
            problem(d, "storage class is not one a k3s node has")
    # --single names the stack's own components: checked in the namespaces of a Magento site.
    if any(t.get("metadata", {}).get("labels", {}).get("app.kubernetes.io/part-of") == "magento" for _, t in ns.templates):
        for name in args.single:
            check_single(ns, name)


def check_paths(namespaces, expect_paths):
    with open(expect_paths) as f:
        expected = {line.strip() for line in f if line.strip() and not line.startswith("#")}
    got = network_paths(namespaces)
    for p in sorted(expected - got):
        problems.append(f"NetworkPolicy: path {p} is needed but not allowed")
    for p in sorted(got - expected):
        problems.append(f"NetworkPolicy: path {p} is allowed but not needed")


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--schemas", default=DEFAULT_SCHEMAS)
    ap.add_argument("--expect-paths")
    ap.add_argument("--image-prefix", action="append", default=[])
    ap.add_argument("--single", action="append", default=[])
    ap.add_argument("files", nargs="+")
    args = ap.parse_args()

    namespaces = {}
    count = 0
    for path in args.files:
        with open(path) as f:
            for doc in yaml.safe_load_all(f):
                if doc is None:
                    continue
                count += 1
                validate_schema(args.schemas, doc)
                nsname = doc.get("metadata", {}).get("namespace") or doc.get("metadata", {}).get("name")
                ns = namespaces.setdefault(nsname, Namespace(nsname))
                ns.docs.append(doc)
    for ns in namespaces.values():
        try:
            check_namespace(ns, args)
        except (KeyError, TypeError, AttributeError, IndexError) as e:
            # A document the schema already refused can break a cross-check: that is a failure too.
            problems.append(f"cross-references: a document lacks what they need ({type(e).__name__}: {e})")
    if args.expect_paths:
        try:
            check_paths(list(namespaces.values()), args.expect_paths)
        except (KeyError, TypeError, AttributeError, IndexError) as e:
            problems.append(f"NetworkPolicy paths: a document lacks what they need ({type(e).__name__}: {e})")
    if count == 0:
        problems.append("no documents")
    for p in problems:
        print(f"k8s_check: {p}")
    if problems:
        return 1
    print(f"k8s_check: ok ({count} documents, {len(namespaces)} namespaces)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
