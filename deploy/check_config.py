#!/usr/bin/env python3
"""Runs `token-validator check-config` on every configuration the repository ships
(run by deploy/check.sh after the Rust build). The keys themselves are known
only to the Rust types and config.schema.json, generated from them; nothing
here lists them.

  check_config.py rendered RENDERED.yaml --bin BIN
      The chart's config.yaml (the ConfigMap of a `helm template` output) passes
      check-config, run with a clean environment holding only the container's
      literal `env` entries, as the pod would load it.
  check_config.py refuses RENDERED.yaml --bin BIN
      The same file with `client_ids` misspelt `client_id` is refused: exit 1 and
      one stderr line starting `config: ` that names pools[0] and client_id.
  check_config.py ecs TASKDEF.json --bin BIN
      The token-validator container's `environment` (and a `--config FILE` in its
      `command`, kept beside the task definition) passes check-config, run with a
      clean environment holding only those variables.
  (README's configuration table: deploy/check_config_table.py.)

TLS files: config load checks that tls.cert_file, tls.key_file and
tls.client_ca_file are existing files (their contents are parsed only when the
server starts). A rendered config names paths inside the pod, so they are
pointed at empty files in a temporary folder, through the environment
(TOKEN_VALIDATOR__TLS__<KEY>), which wins over the file just as in the pod.

Prints one line per check; exits non-zero if any failed. Needs PyYAML and jsonschema.
"""

import json
import os
import subprocess
import sys
import tempfile

import yaml

TLS_FILE_KEYS = ("cert_file", "key_file", "client_ca_file")
TIMEOUT = 30

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


def run_check_config(binary, config_path, env):
    """(exit code, stderr) of `BIN check-config [--config FILE]` with exactly `env`."""
    if not os.access(binary, os.X_OK):
        return None, f"no executable at {binary}: build it (cargo build) or set TOKEN_VALIDATOR_BIN"
    args = [binary, "check-config"] + (["--config", config_path] if config_path else [])
    try:
        done = subprocess.run(args, env=env, capture_output=True, text=True, timeout=TIMEOUT, check=False)
    except subprocess.TimeoutExpired:
        return None, f"check-config did not finish within {TIMEOUT} s"
    return done.returncode, done.stderr.strip()


def accepted(binary, config_path, env, what):
    code, err = run_check_config(binary, config_path, env)
    return check(code == 0, what, f"exit {code}: {err}" if code != 0 else err)


def stand_in_files(folder, names):
    """Empty files standing in for TLS files: load checks only that they exist."""
    paths = {}
    for name in names:
        path = os.path.join(folder, name)
        open(path, "w", encoding="utf-8").close()
        paths[name] = path
    return paths


def tls_env(config, folder):
    """TOKEN_VALIDATOR__TLS__<KEY> for every TLS file the config names, pointing at a stand-in."""
    tls = config.get("tls") or {}
    files = stand_in_files(folder, [k for k in TLS_FILE_KEYS if tls.get(k)])
    return {f"TOKEN_VALIDATOR__TLS__{k.upper()}": path for k, path in files.items()}


# --------------------------------------------------------------------------
# The chart
# --------------------------------------------------------------------------
def rendered_objects(path):
    with open(path, encoding="utf-8") as f:
        docs = [d for d in yaml.safe_load_all(f) if d]
    configs = [d for d in docs if d["kind"] == "ConfigMap" and "config.yaml" in d.get("data", {})]
    deployments = [d for d in docs if d["kind"] == "Deployment"]
    if len(configs) != 1 or len(deployments) != 1:
        raise SystemExit(f"{path}: expected one ConfigMap with config.yaml and one Deployment")
    (container,) = [c for c in deployments[0]["spec"]["template"]["spec"]["containers"] if c["name"] == "token-validator"]
    return configs[0]["data"]["config.yaml"], container


def pod_env(container):
    """The container's literal env entries (valueFrom cannot be resolved offline)."""
    env, skipped = {}, []
    for var in container.get("env", []):
        if "value" in var:
            env[var["name"]] = str(var["value"])
        elif var.get("valueFrom"):
            skipped.append(var["name"])
    return env, skipped


def rendered(path, binary, typo=False):
    raw, container = rendered_objects(path)
    name = os.path.basename(path)
    with tempfile.TemporaryDirectory(prefix="tv-check-config.") as tmp:
        if typo:
            cfg = yaml.safe_load(raw)
            pool = cfg["pools"][0]
            pool["client_id"] = pool.pop("client_ids", ["c"])
            raw = yaml.safe_dump(cfg)
        config_path = os.path.join(tmp, "config.yaml")
        with open(config_path, "w", encoding="utf-8") as f:
            f.write(raw)
        env, skipped = pod_env(container)
        note = f" (pod env {sorted(env)}" + (f", valueFrom skipped: {skipped}" if skipped else "")
        stand_ins = tls_env(yaml.safe_load(raw), tmp)
        env.update(stand_ins)
        note += (f"; TLS files: stand-ins via {sorted(stand_ins)})" if stand_ins else ")")
        if not typo:
            accepted(binary, config_path, env, f"{name}: config.yaml passes token-validator check-config{note}")
            return
        code, err = run_check_config(binary, config_path, env)
        lines = err.splitlines()
        check(code == 1 and len(lines) == 1 and lines[0].startswith("config: ")
              and "pools[0]" in lines[0] and "client_id" in lines[0],
              f"{name}: check-config refuses pools[0].client_id (exit 1, one line naming the key)",
              f"exit {code}, stderr: {err!r}")


# --------------------------------------------------------------------------
# ECS
# --------------------------------------------------------------------------
def ecs(path, binary):
    name = os.path.basename(path)
    with open(path, encoding="utf-8") as f:
        td = json.load(f)
    (container,) = [c for c in td["containerDefinitions"] if c.get("name") == "token-validator"]
    env = {e["name"]: e["value"] for e in container.get("environment", [])}
    secrets = [s["name"] for s in container.get("secrets", [])]
    command = container.get("command", [])
    config_path = None
    if "--config" in command:
        image_path = command[command.index("--config") + 1]
        config_path = os.path.join(os.path.dirname(path), os.path.basename(image_path))
        if not check(os.path.isfile(config_path), f"{name}: --config {image_path} has a copy in deploy/ecs/",
                     f"keep {os.path.basename(image_path)} beside the task definition so CI can check it"):
            return
    with tempfile.TemporaryDirectory(prefix="tv-check-config.") as tmp:
        # TLS files are written into the task at start (see README): stand-ins here.
        for var in list(env):
            key = var.removeprefix("TOKEN_VALIDATOR__TLS__").lower()
            if var.startswith("TOKEN_VALIDATOR__TLS__") and key in TLS_FILE_KEYS:
                env[var] = stand_in_files(tmp, [key])[key]
        note = f" (environment {sorted(env)}" + (f"; secrets not read by the validator: {secrets}" if secrets else "") + ")"
        accepted(binary, config_path, env, f"{name}: the validator's config passes token-validator check-config{note}")


def option(argv, name):
    return argv[argv.index(name) + 1] if name in argv[:-1] else None


def main(argv):
    command, args = (argv[1], argv[2:]) if len(argv) > 2 else (None, [])
    binary = option(args, "--bin")
    commands = {"rendered": lambda p: rendered(p, binary), "refuses": lambda p: rendered(p, binary, typo=True),
                "ecs": lambda p: ecs(p, binary)}
    if command not in commands or not binary:
        print(__doc__, file=sys.stderr)
        return 2
    commands[command](args[0])
    return summary()


def summary():
    print(f"  -> {passed} of {passed + failed} checks ok")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
