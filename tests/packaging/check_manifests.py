#!/usr/bin/env python3
"""Checks packaging/kubernetes/*.yaml against the fields they use.

Usage: check_manifests.py DIR TIERSWAPCTL
Every document must parse and carry apiVersion, kind and metadata.name;
references between them must resolve (selectors, named ports, volumes, the
ConfigMap key the daemon reads), and the embedded config must pass
`tierswapctl check`. Prints "manifests ok" or each problem and exits 1.
"""
import os
import subprocess
import sys
import tempfile

import yaml

problems = []


def need(cond, msg):
    if not cond:
        problems.append(msg)
    return cond


def get(doc, path, default=None):
    cur = doc
    for part in path.split("."):
        if not isinstance(cur, dict) or part not in cur:
            return default
        cur = cur[part]
    return cur


def subset(small, big):
    return isinstance(small, dict) and isinstance(big, dict) and all(big.get(k) == v for k, v in small.items())


def main():
    directory, tierswapctl = sys.argv[1], sys.argv[2]
    docs = []
    for name in sorted(os.listdir(directory)):
        if not name.endswith(".yaml"):
            continue
        with open(os.path.join(directory, name)) as f:
            for i, doc in enumerate(yaml.safe_load_all(f)):
                if doc is None:
                    continue
                where = f"{name}[{i}]"
                # A KubeletConfiguration is a file for the kubelet, not an object.
                keys = ["apiVersion", "kind"] + ([] if doc.get("kind") == "KubeletConfiguration" else ["metadata.name"])
                for key in keys:
                    need(get(doc, key), f"{where}: missing {key}")
                docs.append((where, doc))

    def of_kind(kind):
        return [(w, d) for w, d in docs if d.get("kind") == kind]

    # The kubelet must allow swap, and only for Burstable pods.
    kubelet = of_kind("KubeletConfiguration")
    if need(len(kubelet) == 1, "expected one KubeletConfiguration"):
        w, k = kubelet[0]
        need(k.get("failSwapOn") is False, f"{w}: failSwapOn must be false")
        need(get(k, "memorySwap.swapBehavior") == "LimitedSwap", f"{w}: memorySwap.swapBehavior must be LimitedSwap")

    configmaps = {(get(d, "metadata.namespace"), get(d, "metadata.name")): d for _, d in of_kind("ConfigMap")}
    daemonsets = of_kind("DaemonSet")
    need(len(daemonsets) == 1, "expected one DaemonSet")
    pod_labels, ns, metrics_ports, container_port = {}, None, set(), None
    for w, ds in daemonsets:
        ns = get(ds, "metadata.namespace")
        pod = get(ds, "spec.template.spec", {})
        pod_labels = get(ds, "spec.template.metadata.labels", {})
        need(subset(get(ds, "spec.selector.matchLabels"), pod_labels), f"{w}: selector does not match the pod labels")
        volumes = {v["name"]: v for v in pod.get("volumes", [])}
        host_paths = {get(v, "hostPath.path"): n for n, v in volumes.items() if "hostPath" in v}
        for p in ("/sys", "/proc", "/dev", "/run"):
            need(p in host_paths, f"{w}: no hostPath volume for the host's {p}")
        containers = pod.get("containers", [])
        need(len(containers) >= 1, f"{w}: no container")
        for c in containers:
            cw = f"{w}: container {c.get('name')}"
            need(get(c, "securityContext.privileged") is True, f"{cw}: must be privileged")
            mounts = {m["name"]: m for m in c.get("volumeMounts", [])}
            for n in mounts:
                need(n in volumes, f"{cw}: mounts undefined volume {n}")
            for p, n in host_paths.items():
                need(n in mounts, f"{cw}: does not mount the host's {p}")
            metrics_ports |= {p.get("name") for p in c.get("ports", [])}
            need("metrics" in metrics_ports, f"{cw}: no port named metrics")
            container_port = next((p.get("containerPort") for p in c.get("ports", []) if p.get("name") == "metrics"),
                                  None)
            args = c.get("args", [])
            need("--config" in args, f"{cw}: no --config")
            if "--config" in args:
                cfg = args[args.index("--config") + 1]
                # The config must come from a ConfigMap volume holding that key.
                found = False
                for n, m in mounts.items():
                    v = volumes.get(n, {})
                    if "configMap" in v and cfg.startswith(m["mountPath"].rstrip("/") + "/"):
                        key = cfg[len(m["mountPath"].rstrip("/")) + 1:]
                        cm = configmaps.get((ns, get(v, "configMap.name")))
                        if need(cm is not None, f"{cw}: ConfigMap {get(v, 'configMap.name')} is not defined"):
                            text = get(cm, "data", {}).get(key)
                            if need(text is not None, f"{cw}: ConfigMap has no key {key}"):
                                found = True
                                check_config(tierswapctl, text, f"ConfigMap key {key}")
                                check_metrics_listen(yaml.safe_load(text), container_port, f"ConfigMap key {key}")
                need(found, f"{cw}: --config {cfg} is not in a mounted ConfigMap")

    services = of_kind("Service")
    need(len(services) >= 1, "expected a Service for the metrics port")
    for w, s in services:
        need(get(s, "metadata.namespace") == ns, f"{w}: not in the DaemonSet's namespace {ns}")
        need(subset(get(s, "spec.selector"), pod_labels), f"{w}: selector does not match the DaemonSet's pods")
        for p in get(s, "spec.ports", []):
            need(p.get("targetPort") in metrics_ports, f"{w}: targetPort {p.get('targetPort')} is no container port")

    for w, sm in of_kind("ServiceMonitor"):
        match = [s for _, s in services if subset(get(sm, "spec.selector.matchLabels"), get(s, "metadata.labels", {}))]
        if need(match, f"{w}: selects no Service"):
            names = {p.get("name") for s in match for p in get(s, "spec.ports", [])}
            for e in get(sm, "spec.endpoints", []):
                need(e.get("port") in names, f"{w}: endpoint port {e.get('port')} is not a Service port name")
        need(ns in get(sm, "spec.namespaceSelector.matchNames", []), f"{w}: namespaceSelector misses {ns}")

    # A NetworkPolicy, where there is one, must select the DaemonSet's pods
    # and let the metrics port in (else the ServiceMonitor scrapes nothing).
    for w, np in of_kind("NetworkPolicy"):
        need(get(np, "metadata.namespace") == ns, f"{w}: not in the DaemonSet's namespace {ns}")
        need(subset(get(np, "spec.podSelector.matchLabels"), pod_labels), f"{w}: does not select the DaemonSet's pods")
        ports = {p.get("port") for rule in get(np, "spec.ingress", []) for p in rule.get("ports", [])}
        need(ports & (metrics_ports | {container_port}), f"{w}: lets no traffic to the metrics port in")

    if problems:
        print("\n".join(problems))
        return 1
    print("manifests ok")
    return 0


def check_metrics_listen(cfg, container_port, what):
    """The daemon must listen on the pod's address at the container's metrics
    port: a loopback address is the pod's own loopback, which no Service
    reaches."""
    listen = str(get(cfg or {}, "metrics.listen", "") or "")
    if not need(listen, f"{what}: no metrics.listen (the metrics port would have nothing behind it)"):
        return
    host, _, port = listen.rpartition(":")
    host = host.strip("[]")
    need(port == str(container_port), f"{what}: metrics.listen port {port} is not the container's metrics "
                                      f"port {container_port}")
    need(host and not host.startswith("127.") and host not in ("::1", "localhost"),
         f"{what}: metrics.listen {listen} is loopback: the pod's own, which the Service cannot reach")


def check_config(tierswapctl, text, what):
    with tempfile.NamedTemporaryFile("w", suffix=".yaml") as f:
        f.write(text)
        f.flush()
        r = subprocess.run([tierswapctl, "check", f.name], capture_output=True, text=True)
    out = (r.stdout + r.stderr).strip()
    need(r.returncode == 0, f"{what}: tierswapctl check failed: {out}")


if __name__ == "__main__":
    sys.exit(main())
