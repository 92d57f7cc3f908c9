#!/usr/bin/env python3
"""Consistency checks on the token-validator chart (run by deploy/check.sh).

  check_rendered.py manifests RENDERED.yaml --expect KIND[,KIND...] --dashboard FILE.json --config-schema FILE.json
      Cross-checks the objects `helm template` produced: selectors match the pod
      labels, Service/ServiceMonitor/NetworkPolicy ports exist on the container,
      the config's listen addresses (gRPC, metrics, forward-auth) are the
      container ports, the forward-auth port is on the Service (appProtocol
      http) and has a NetworkPolicy rule,
      gRPC probes hit the gRPC port (HTTP probes on the metrics port with TLS),
      TLS files lie on a mounted volume, the pod is locked down, the drain fits in
      terminationGracePeriodSeconds, the config checksum matches the ConfigMap,
      the rendered config matches config.schema.json (generated from the
      service's config types; deploy/check_config.py runs check-config on it).
  check_rendered.py schema CHART_DIR BAD_VALUES.yaml
      values.schema.json is a valid draft-07 schema (so any Helm version and
      editor can use it), accepts values.yaml, ci/*-values.yaml and
      examples/*-values.yaml, and rejects
      BAD_VALUES.yaml (check.sh also checks that Helm's message names each bad key).

Prints one line per check; exits non-zero if any failed. Needs PyYAML and jsonschema.
"""

import glob
import hashlib
import json
import os
import sys

import yaml

TLS_FILE_KEYS = ("cert_file", "key_file", "client_ca_file")
# The name of the forward-auth container port (and Service port) with gateway.enabled.
GATEWAY_PORT = "http-auth"
DASHBOARD_METRICS = (
    "token_validator_validations_total",
    "rpc_server_duration_seconds_bucket",
    "token_validator_token_cache_hits_total",
    "token_validator_token_cache_misses_total",
    "token_validator_jwks_key_age_seconds",
    "token_validator_jwks_fetches_total",
)

passed = 0
failed = 0


def check(ok, what, detail=""):
    global passed, failed
    if ok:
        passed += 1
        print(f"  ok   {what}")
    else:
        failed += 1
        print(f"  FAIL {what}" + (f" -- {detail}" if detail else ""))
    return ok


def matches(selector, labels):
    return bool(selector) and all(labels.get(k) == v for k, v in selector.items())


def port_of(listen):
    return int(str(listen).rsplit(":", 1)[1])


def manifests(path, expect, dashboard_path, config_schema_path):
    import jsonschema

    with open(path, encoding="utf-8") as f:
        docs = [d for d in yaml.safe_load_all(f) if d]
    by_kind = {}
    for d in docs:
        by_kind.setdefault(d["kind"], []).append(d)
    kinds = sorted({d["kind"] for d in docs})
    check(kinds == sorted(set(expect)), f"rendered kinds are {','.join(sorted(set(expect)))}", f"got {','.join(kinds)}")
    if not check(len(by_kind.get("Deployment", [])) == 1, "exactly one Deployment"):
        return
    dep = by_kind["Deployment"][0]
    ns = dep["metadata"].get("namespace")
    check(all(d["metadata"].get("namespace") for d in docs), "every object has an explicit namespace")
    pod = dep["spec"]["template"]
    pod_labels = pod["metadata"]["labels"]
    spec = pod["spec"]
    check(matches(dep["spec"]["selector"]["matchLabels"], pod_labels), "Deployment selector matches the pod labels")
    (ctr,) = spec["containers"]
    cports = {p["name"]: p["containerPort"] for p in ctr.get("ports", [])}

    # The config file.
    cms = [c for c in by_kind.get("ConfigMap", []) if "config.yaml" in c.get("data", {})]
    if not check(len(cms) == 1, "one ConfigMap holds config.yaml"):
        return
    raw = cms[0]["data"]["config.yaml"]
    cfg = yaml.safe_load(raw)
    with open(config_schema_path, encoding="utf-8") as f:
        config_schema = json.load(f)
    errors = [f"{'.'.join(map(str, e.absolute_path)) or '(top)'}: {e.message}"
              for e in jsonschema.Draft7Validator(config_schema).iter_errors(cfg)]
    check(not errors, f"config.yaml matches {os.path.basename(config_schema_path)}", "; ".join(errors))
    pools = cfg.get("pools", [])
    check(pools and all(p.get("name") and p.get("region") and p.get("user_pool_id") for p in pools),
          f"config.yaml lists {len(pools)} pool(s), each with name, region and user_pool_id")
    optional = [p.get("name") for p in pools if p.get("required", True) is False]
    check(all(isinstance(p.get("required", True), bool) for p in pools),
          f"pools[].required is a boolean where set (optional pools: {optional or 'none'})")
    check(port_of(cfg.get("listen", ":0")) == cports.get("grpc"), "config listen port == container port grpc")
    metrics_cfg = cfg.get("metrics", {})
    if metrics_cfg.get("enabled"):
        check(port_of(metrics_cfg.get("listen", ":0")) == cports.get("metrics"),
              "config metrics.listen port == container port metrics")
    else:
        check("metrics" not in cports, "metrics disabled: no metrics container port")
    gateway_cfg = cfg.get("gateway") or {}
    if gateway_cfg.get("http_listen"):
        check(port_of(gateway_cfg["http_listen"]) == cports.get(GATEWAY_PORT),
              f"config gateway.http_listen port == container port {GATEWAY_PORT}")
    else:
        check(GATEWAY_PORT not in cports, f"no gateway.http_listen: no {GATEWAY_PORT} container port")
    check(len(set(cports.values())) == len(cports), f"container ports are distinct ({cports})")
    check(pod["metadata"].get("annotations", {}).get("checksum/config")
          == hashlib.sha256(raw.rstrip("\n").encode()).hexdigest(),
          "pod annotation checksum/config is the sha256 of config.yaml")
    mounts = {m["name"]: m["mountPath"] for m in ctr.get("volumeMounts", [])}
    vols = {v["name"]: v for v in spec.get("volumes", [])}
    check(vols.get("config", {}).get("configMap", {}).get("name") == cms[0]["metadata"]["name"]
          and ctr.get("args") == ["--config", os.path.join(mounts.get("config", "/nonexistent"), "config.yaml")],
          "container reads --config from the mounted ConfigMap")

    # TLS: the files lie on a mounted volume.
    tls = cfg.get("tls") or {}
    files = [tls[k] for k in TLS_FILE_KEYS if tls.get(k)]
    for file in files:
        mount = sorted((m for m in ctr.get("volumeMounts", []) if file.startswith(m["mountPath"].rstrip("/") + "/")),
                       key=lambda m: -len(m["mountPath"]))
        check(mount and mount[0].get("readOnly") is True and mount[0]["name"] in vols,
              f"TLS file {file} lies on the read-only mount of volume {mount[0]['name'] if mount else '(none)'}")

    # Probes and shutdown. The kubelet's gRPC probe cannot speak TLS.
    def http_probe(probe, path):
        return (probe.get("httpGet", {}).get("path") == path and probe["httpGet"].get("port") == "metrics"
                and "metrics" in cports)

    for kind in ("startupProbe", "readinessProbe"):
        probe = ctr.get(kind)
        if probe is not None or kind == "readinessProbe":
            if tls:
                check(probe is not None and http_probe(probe, "/readyz"),
                      f"{kind} is GET /readyz on the metrics port (TLS on the gRPC port)")
            else:
                check(probe is not None and probe.get("grpc", {}).get("port") == cports["grpc"],
                      f"{kind} is a native gRPC probe on port {cports['grpc']}")
    live = ctr.get("livenessProbe", {})
    if tls:
        check(http_probe(live, "/healthz"), "livenessProbe is GET /healthz on the metrics port (TLS on the gRPC port)")
    else:
        check(live.get("grpc", {}).get("port") == cports["grpc"] or http_probe(live, "/healthz"),
              "livenessProbe is gRPC on the gRPC port or GET /healthz on the metrics port")
    grace = cfg.get("server", {}).get("shutdown_grace_secs", 20)
    delay = cfg.get("server", {}).get("shutdown_delay_ms", 0) / 1000
    sleep = ctr.get("lifecycle", {}).get("preStop", {}).get("sleep", {}).get("seconds", 0)
    tgps = spec.get("terminationGracePeriodSeconds", 30)
    check(tgps > sleep + delay + grace,
          f"terminationGracePeriodSeconds {tgps} > preStop sleep {sleep}s + delay {delay:g}s + drain {grace}s")

    # Security.
    psc, csc = spec.get("securityContext", {}), ctr.get("securityContext", {})
    check(psc.get("runAsNonRoot") is True and csc.get("runAsNonRoot") is not False, "runAsNonRoot")
    check(csc.get("readOnlyRootFilesystem") is True, "readOnlyRootFilesystem")
    check(csc.get("allowPrivilegeEscalation") is False, "allowPrivilegeEscalation: false")
    check(csc.get("capabilities", {}).get("drop") == ["ALL"], "capabilities drop ALL")
    check(psc.get("seccompProfile", {}).get("type") == "RuntimeDefault", "seccompProfile RuntimeDefault")
    check(spec.get("automountServiceAccountToken") is False, "no service account token mounted")
    check("memory" in ctr.get("resources", {}).get("limits", {}) and ctr.get("resources", {}).get("requests"),
          "resources: requests and a memory limit")
    tsc = spec.get("topologySpreadConstraints", [])
    check(tsc and all(matches(t.get("labelSelector", {}).get("matchLabels"), pod_labels) for t in tsc),
          f"{len(tsc)} topologySpreadConstraints select the pods")
    sas = by_kind.get("ServiceAccount", [])
    check(any(s["metadata"]["name"] == spec.get("serviceAccountName") for s in sas),
          "the pod's ServiceAccount is rendered")

    # Services.
    services = by_kind.get("Service", [])
    for svc in services:
        name = svc["metadata"]["name"]
        check(matches(svc["spec"]["selector"], pod_labels), f"Service {name} selects the pods")
        check(all(p["targetPort"] in cports for p in svc["spec"]["ports"]),
              f"Service {name} targets named container ports")
        grpc_ports = [p for p in svc["spec"]["ports"] if p["name"] == "grpc"]
        check(grpc_ports and grpc_ports[0].get("appProtocol") == "grpc", f"Service {name} port grpc has appProtocol grpc")
        for p in svc["spec"]["ports"]:
            if p["targetPort"] == GATEWAY_PORT:
                check(p["name"] == GATEWAY_PORT and p.get("appProtocol") == "http",
                      f"Service {name} port {p['name']} (forward-auth) is named {GATEWAY_PORT}, appProtocol http")
    if GATEWAY_PORT in cports:
        plain = [s for s in services if s["spec"].get("clusterIP") != "None"]
        check(plain and any(p["targetPort"] == GATEWAY_PORT for p in plain[0]["spec"]["ports"]),
              f"the Service exposes the forward-auth port ({GATEWAY_PORT})")
    headless = [s for s in services if s["spec"].get("clusterIP") == "None"]
    if "headless" in ",".join(s["metadata"]["name"] for s in services):
        check(len(headless) == 1 and not any(p["name"] == "metrics" for p in headless[0]["spec"]["ports"]),
              "headless Service has clusterIP None and no metrics port (no duplicate scrape targets)")

    # Autoscaling, disruption budget.
    hpas = by_kind.get("HorizontalPodAutoscaler", [])
    if hpas:
        ref = hpas[0]["spec"]["scaleTargetRef"]
        check(ref["kind"] == "Deployment" and ref["name"] == dep["metadata"]["name"], "HPA targets the Deployment")
        check("replicas" not in dep["spec"], "Deployment leaves replicas to the HPA")
        check(hpas[0]["spec"]["minReplicas"] <= hpas[0]["spec"]["maxReplicas"] and hpas[0]["spec"]["metrics"],
              f"HPA has {len(hpas[0]['spec']['metrics'])} metric(s) and min <= max")
    else:
        check(dep["spec"].get("replicas", 0) >= 1, "Deployment sets replicas (no HPA)")
    for pdb in by_kind.get("PodDisruptionBudget", []):
        check(matches(pdb["spec"]["selector"]["matchLabels"], pod_labels), "PodDisruptionBudget selects the pods")
        check(("minAvailable" in pdb["spec"]) != ("maxUnavailable" in pdb["spec"]),
              "PodDisruptionBudget sets exactly one of minAvailable/maxUnavailable")

    # ServiceMonitor (a CRD: kubernetes-validate has no schema for it).
    for sm in by_kind.get("ServiceMonitor", []):
        check(sm["apiVersion"] == "monitoring.coreos.com/v1", "ServiceMonitor apiVersion monitoring.coreos.com/v1")
        sel = sm["spec"]["selector"]["matchLabels"]
        targets = [s for s in services if matches(sel, s["metadata"]["labels"])
                   and s["metadata"]["namespace"] in sm["spec"]["namespaceSelector"]["matchNames"]]
        eps = sm["spec"]["endpoints"]
        check(targets and all(any(p["name"] == ep["port"] for s in targets for p in s["spec"]["ports"]) for ep in eps),
              f"ServiceMonitor endpoints {[e['port'] for e in eps]} exist on the Services it selects")
        check(all(ep.get("path") == "/metrics" for ep in eps), "ServiceMonitor scrapes /metrics")

    # NetworkPolicy.
    for np_ in by_kind.get("NetworkPolicy", []):
        check(matches(np_["spec"]["podSelector"]["matchLabels"], pod_labels), "NetworkPolicy selects the pods")
        rules = np_["spec"].get("ingress", [])
        ports = [p["port"] for r in rules for p in r.get("ports", [])]
        check(all(p in cports for p in ports) and "grpc" in ports, "NetworkPolicy admits named container ports incl. grpc")
        if GATEWAY_PORT in cports:
            check(GATEWAY_PORT in ports, f"NetworkPolicy has an ingress rule for the forward-auth port ({GATEWAY_PORT})")
        check(all(r.get("from") for r in rules), "every ingress rule names its peers (no allow-all rule)")

    # Grafana dashboard.
    for cm in by_kind.get("ConfigMap", []):
        for key, text in cm.get("data", {}).items():
            if key.endswith(".json"):
                try:
                    dash = json.loads(text)
                except ValueError as e:
                    check(False, f"dashboard ConfigMap {key} is JSON", str(e))
                    continue
                with open(dashboard_path, encoding="utf-8") as f:
                    check(dash == json.load(f), f"dashboard ConfigMap carries {os.path.basename(dashboard_path)} unchanged")


def dashboard(path):
    try:
        with open(path, encoding="utf-8") as f:
            dash = json.load(f)
    except ValueError as e:
        check(False, "dashboard is JSON", str(e))
        return
    check(dash.get("title") and dash.get("uid") and isinstance(dash.get("panels"), list),
          f"dashboard has title, uid and {len(dash.get('panels', []))} panels")
    exprs = " ".join(t.get("expr", "") for p in dash.get("panels", []) for t in p.get("targets", []))
    missing = [m for m in DASHBOARD_METRICS if m not in exprs]
    check(not missing, f"dashboard queries all {len(DASHBOARD_METRICS)} service metrics", f"missing {missing}")
    ids = [p.get("id") for p in dash.get("panels", [])]
    check(len(ids) == len(set(ids)), "dashboard panel ids are unique")


def schema(chart_dir, bad_values):
    import jsonschema

    with open(os.path.join(chart_dir, "values.schema.json"), encoding="utf-8") as f:
        sch = json.load(f)
    try:
        jsonschema.Draft7Validator.check_schema(sch)
        check(True, "values.schema.json is a valid draft-07 JSON schema")
    except jsonschema.SchemaError as e:
        check(False, "values.schema.json is a valid draft-07 JSON schema", e.message)
        return
    validator = jsonschema.Draft7Validator(sch)
    good = [os.path.join(chart_dir, "values.yaml")] + sorted(
        glob.glob(os.path.join(chart_dir, "ci", "*-values.yaml")) + glob.glob(os.path.join(chart_dir, "examples", "*-values.yaml")))
    defaults = yaml.safe_load(open(good[0], encoding="utf-8"))
    for path in good:
        values = yaml.safe_load(open(path, encoding="utf-8"))
        if path != good[0]:
            values = merge(defaults, values)
        errors = [f"{'/'.join(map(str, e.absolute_path))}: {e.message}" for e in validator.iter_errors(values)]
        check(not errors, f"schema accepts {os.path.relpath(path, chart_dir)}", "; ".join(errors))
    values = merge(defaults, yaml.safe_load(open(bad_values, encoding="utf-8")))
    paths = {"/" + "/".join(map(str, e.absolute_path)) for e in validator.iter_errors(values)}
    check(paths, f"schema rejects {os.path.basename(bad_values)} (errors at {sorted(paths)})")


def merge(base, override):
    """Helm-style coalescing: maps merge, everything else replaces; null deletes."""
    out = dict(base)
    for k, v in (override or {}).items():
        if v is None:
            out.pop(k, None)
        elif isinstance(v, dict) and isinstance(out.get(k), dict):
            out[k] = merge(out[k], v)
        else:
            out[k] = v
    return out


def main(argv):
    if len(argv) >= 3 and argv[1] == "manifests":
        expect = argv[argv.index("--expect") + 1].split(",")
        dash = argv[argv.index("--dashboard") + 1]
        manifests(argv[2], expect, dash, argv[argv.index("--config-schema") + 1])
        dashboard(dash)
    elif len(argv) == 4 and argv[1] == "schema":
        schema(argv[2], argv[3])
    else:
        print(__doc__, file=sys.stderr)
        return 2
    print(f"  -> {passed} of {passed + failed} checks ok")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
