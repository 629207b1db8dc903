#!/usr/bin/env python3
"""Checks deploy/kubernetes/hubcache.yaml: the documents parse, the pieces fit
together (the headless Service's ports, the Secret's mount, the probes), and
the configuration the DaemonSet gives hubcache loads: its arguments and
environment are handed to `hubcache config print`, which refuses an unknown
key or a bad value. Where kubectl reaches an API server, also
`kubectl apply --dry-run=client`.

Usage: deploy_test.py SOURCE_DIR HUBCACHE_BINARY
"""
import os
import shutil
import subprocess
import sys
import tempfile

import yaml


def fail(message):
    print(f"deploy_test: {message}", file=sys.stderr)
    sys.exit(1)


def check(condition, message):
    if not condition:
        fail(message)


def main():
    source, binary = sys.argv[1], sys.argv[2]
    path = os.path.join(source, "deploy", "kubernetes", "hubcache.yaml")
    with open(path) as f:
        docs = [d for d in yaml.safe_load_all(f) if d]
    by_kind = {d["kind"]: d for d in docs}
    check(set(by_kind) == {"Service", "DaemonSet"}, f"expected a Service and a DaemonSet: {set(by_kind)}")
    service, daemonset = by_kind["Service"], by_kind["DaemonSet"]

    # The headless Service that DNS membership resolves.
    spec = service["spec"]
    check(spec.get("clusterIP") == "None", "the Service must be headless (clusterIP: None)")
    check(spec.get("publishNotReadyAddresses") is True,
          "starting pods must resolve too (publishNotReadyAddresses)")
    ports = {p["name"]: p["port"] for p in spec["ports"]}
    check(ports.get("bittorrent") == ports.get("cluster", -2) + 1,
          f"BitTorrent takes the cluster port + 1: {ports}")
    labels = daemonset["spec"]["template"]["metadata"]["labels"]
    check(all(labels.get(k) == v for k, v in spec["selector"].items()),
          "the Service selects the DaemonSet's pods")
    check(daemonset["spec"]["selector"]["matchLabels"].items() <= labels.items(),
          "the DaemonSet selects its own pods")

    pod = daemonset["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    env = {e["name"]: e for e in container["env"]}
    values = {name: e["value"] for name, e in env.items() if "value" in e}
    check(env["POD_IP"]["valueFrom"]["fieldRef"]["fieldPath"] == "status.podIP",
          "POD_IP comes from the pod's address")
    dns_name, dns_port = values["HUBCACHE_CLUSTER_DNS"].rsplit(":", 1)
    check(dns_name == f"{service['metadata']['name']}.{service['metadata']['namespace']}.svc.cluster.local",
          f"cluster.dns names the headless Service: {dns_name}")
    check(int(dns_port) == ports["cluster"], "cluster.dns uses the Service's cluster port")
    check(values["HUBCACHE_CLUSTER_LISTEN"] == f"$(POD_IP):{ports['cluster']}",
          "each pod listens on its own address and the cluster port")
    container_ports = {p["name"]: p["containerPort"] for p in container["ports"]}
    check(container_ports["cluster"] == ports["cluster"] and
          container_ports["bittorrent"] == ports["bittorrent"], "container ports match the Service")

    # The secret: mounted where cluster.secret_file points, from a Secret.
    volumes = {v["name"]: v for v in pod["volumes"]}
    mounts = {m["name"]: m for m in container["volumeMounts"]}
    secret_file = values["HUBCACHE_CLUSTER_SECRET_FILE"]
    secret_mounts = [m for name, m in mounts.items() if "secret" in volumes[name]]
    check(len(secret_mounts) == 1, "one Secret volume")
    (secret_mount,) = secret_mounts
    check(os.path.dirname(secret_file) == secret_mount["mountPath"],
          "cluster.secret_file lies in the Secret's mount")
    check(secret_mount.get("readOnly") is True, "the Secret is mounted read-only")
    # The cache: on the node's disk, where --cache-dir says.
    args = container["args"]
    check(args[0] == "serve", "the container runs `hubcache serve`")
    cache_dir = args[args.index("--cache-dir") + 1]
    cache_volume = [name for name, m in mounts.items() if m["mountPath"] == cache_dir]
    check(cache_volume and "hostPath" in volumes[cache_volume[0]], "the cache is a hostPath volume")
    # Readiness and liveness on hubcache's own endpoints and port.
    listen_port = int(args[args.index("--listen") + 1].rsplit(":", 1)[1])
    check(container["readinessProbe"]["httpGet"] == {"path": "/readyz", "port": listen_port},
          "readiness on /readyz")
    check(container["livenessProbe"]["httpGet"] == {"path": "/healthz", "port": listen_port},
          "liveness on /healthz")
    requests = container["resources"]["requests"]
    check(requests["memory"].endswith("Mi") and int(requests["memory"][:-2]) >= 150,
          "the memory request covers a node with a swarm in flight")

    # The configuration loads: the same arguments and environment, the pod's
    # address and the secret stood in for.
    work = tempfile.mkdtemp(prefix="hubcache-deploy-")
    try:
        secret = os.path.join(work, "secret")
        with open(secret, "w") as f:
            f.write("a test secret of 32 bytes, no more\n")
        run_env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin")}
        for name, value in values.items():
            run_env[name] = value.replace("$(POD_IP)", "127.0.0.1")
        run_env["HUBCACHE_CLUSTER_SECRET_FILE"] = secret
        argv = [binary, "config", "print"] + [
            os.path.join(work, "cache") if a == cache_dir else a for a in args[1:]]
        r = subprocess.run(argv, env=run_env, capture_output=True, text=True, timeout=60)
        check(r.returncode == 0, f"hubcache refuses the DaemonSet's configuration:\n{r.stdout}{r.stderr}")
        for key, origin in [("cluster.listen", "HUBCACHE_CLUSTER_LISTEN"),
                            ("cluster.dns", "HUBCACHE_CLUSTER_DNS"),
                            ("log.format", "HUBCACHE_LOG_FORMAT")]:
            check(f"# env {origin}" in r.stdout, f"{key} not taken from {origin}:\n{r.stdout}")
    finally:
        shutil.rmtree(work, ignore_errors=True)

    # kubectl's client-side dry run still asks an API server what the kinds
    # are: run it only where one answers.
    kubectl = shutil.which("kubectl")
    reachable = kubectl and subprocess.run(
        [kubectl, "version", "--request-timeout=3s"], capture_output=True, timeout=30).returncode == 0
    if reachable:
        r = subprocess.run([kubectl, "apply", "--dry-run=client", "-f", path],
                           capture_output=True, text=True, timeout=120)
        check(r.returncode == 0, f"kubectl apply --dry-run=client: {r.stdout}{r.stderr}")
    else:
        print("deploy_test: no kubectl with a reachable API server (Debian 12 packages no kubectl); "
              "parsed and loaded only")
    print("deploy_test: ok")


if __name__ == "__main__":
    main()
