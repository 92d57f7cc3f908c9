#!/usr/bin/env python3
"""Offline validation of ECS task definitions for token-validator.

Usage: validate_task_definitions.py FILE.json [FILE.json ...]

For each file:
  1. botocore's ParamValidator checks the JSON against the input shape of the
     ECS RegisterTaskDefinition API (required members, types, unknown keys,
     minimum lengths), exactly as `aws ecs register-task-definition
     --cli-input-json file://FILE` would before sending the request;
  2. every string whose shape has an enum (ParamValidator does not check
     enums) is checked against it: networkMode, requiresCompatibilities,
     portMappings[].protocol/appProtocol, dependsOn[].condition, logDriver, ...;
  3. Fargate and token-validator specific rules: valid cpu/memory pair, the
     health check command, stopTimeout covering the service's drain, named
     grpc port mapping with appProtocol grpc, awslogs options, volumes, for
     a sidecar task the app's dependsOn HEALTHY on the validator, and for TLS
     (TOKEN_VALIDATOR__TLS__*_FILE) the files on a read-only volume that an
     init container (essential false, dependsOn SUCCESS) fills from `secrets`
     with well-formed Secrets Manager / SSM ARNs; the execution and task
     roles are IAM role ARNs of one account, and two different roles (the
     task role holds only what the containers call: for token-validator,
     deploy/iam/revocation-policy.json; the execution role pulls images,
     writes logs and reads secrets).

deploy/check_config.py runs `token-validator check-config` on the validator's
environment.

Prints one line per check and exits non-zero if any failed. Needs botocore.
"""

import json
import re
import sys

import botocore.session
from botocore.validate import ParamValidator

VALIDATOR_NAME = "token-validator"
HEALTH_COMMAND = ["CMD", "/usr/local/bin/token-validator", "health"]
GRPC_PORT = 50051
METRICS_PORT = 9090
DRAIN_SECS = 20  # the service's default server.shutdown_grace_secs
FARGATE_MAX_STOP_TIMEOUT = 120
ONE_POOL_ENV = ("COGNITO_REGION", "COGNITO_USER_POOL_ID", "COGNITO_CLIENT_IDS")
TLS_FILE_ENV = ("TOKEN_VALIDATOR__TLS__CERT_FILE", "TOKEN_VALIDATOR__TLS__KEY_FILE", "TOKEN_VALIDATOR__TLS__CLIENT_CA_FILE")
# What ECS accepts in secrets[].valueFrom: a Secrets Manager secret (optionally
# :json-key:version-stage:version-id) or an SSM parameter, by full ARN.
SECRET_ARN = re.compile(r"^arn:aws[a-z-]*:secretsmanager:([a-z0-9-]+):(\d{12}):secret:[\w/+=.@-]+-[A-Za-z0-9]{6}"
                        r"(:[^:]*:[^:]*:[^:]*)?$")
ROLE_ARN = re.compile(r"^arn:aws[a-z-]*:iam::(\d{12}):role/[\w+=,.@/-]{1,512}$")
PARAMETER_ARN = re.compile(r"^arn:aws[a-z-]*:ssm:([a-z0-9-]+):(\d{12}):parameter/[\w/.-]+$")
# Enum-typed members this project relies on: each must be present and checked.
REQUIRED_ENUM_PATHS = (
    "networkMode",
    "requiresCompatibilities[]",
    "containerDefinitions[].portMappings[].protocol",
    "containerDefinitions[].portMappings[].appProtocol",
    "containerDefinitions[].logConfiguration.logDriver",
)
SIDECAR_ENUM_PATHS = ("containerDefinitions[].dependsOn[].condition",)

# Fargate task sizes: cpu units -> allowed memory (MiB).
FARGATE_SIZES = {
    256: {512, 1024, 2048},
    512: set(range(1024, 4097, 1024)),
    1024: set(range(2048, 8193, 1024)),
    2048: set(range(4096, 16385, 1024)),
    4096: set(range(8192, 30721, 1024)),
    8192: set(range(16384, 61441, 4096)),
    16384: set(range(32768, 122881, 8192)),
}


class Checks:
    def __init__(self, label):
        self.label = label
        self.passed = 0
        self.failed = 0

    def check(self, ok, what, detail=""):
        if ok:
            self.passed += 1
            print(f"  ok   {self.label}: {what}")
        else:
            self.failed += 1
            print(f"  FAIL {self.label}: {what}" + (f" -- {detail}" if detail else ""))
        return ok


def walk_enums(value, shape, path, found):
    """Collects (generic path, concrete path, value, allowed) for every enum string."""
    type_name = shape.type_name
    if type_name == "structure" and isinstance(value, dict):
        for key, sub in value.items():
            if key in shape.members:
                walk_enums(sub, shape.members[key], (path + "." if path else "") + key, found)
    elif type_name == "list" and isinstance(value, list):
        for index, item in enumerate(value):
            walk_enums(item, shape.member, f"{path}[{index}]", found)
    elif type_name == "map" and isinstance(value, dict):
        for key, sub in value.items():
            walk_enums(sub, shape.value, f"{path}.{key}", found)
    elif type_name == "string" and getattr(shape, "enum", None):
        found.append((path, value, list(shape.enum)))


def generic(path):
    """containerDefinitions[1].portMappings[0].protocol -> containerDefinitions[].portMappings[].protocol"""
    out, skip = [], False
    for ch in path:
        if ch == "[":
            out.append("[]")
            skip = True
        elif ch == "]":
            skip = False
        elif not skip:
            out.append(ch)
    return "".join(out)


def env_map(container):
    return {e["name"]: e.get("value") for e in container.get("environment", [])}


def validate_file(path, input_shape):
    label = path.rsplit("/", 1)[-1]
    c = Checks(label)
    try:
        with open(path, encoding="utf-8") as f:
            td = json.load(f)
    except (OSError, json.JSONDecodeError) as e:
        c.check(False, "file is JSON", str(e))
        return c
    c.check(True, "file is JSON")

    # 1. botocore input shape.
    report = ParamValidator().validate(td, input_shape)
    c.check(not report.has_errors(), "matches the RegisterTaskDefinition input shape (botocore ParamValidator)",
            report.generate_report() if report.has_errors() else "")

    # 2. Enums.
    found = []
    walk_enums(td, input_shape, "", found)
    bad = [(p, v, allowed) for p, v, allowed in found if v not in allowed]
    c.check(not bad, f"{len(found)} enum values are allowed by the API model",
            "; ".join(f"{p}={v!r} not in {allowed}" for p, v, allowed in bad))
    seen = {generic(p) for p, _, _ in found}
    containers = td.get("containerDefinitions", [])
    # An app beside the validator is essential; an init container (TLS files) is not.
    is_sidecar = any(x.get("essential", True) and x.get("name") != VALIDATOR_NAME for x in containers)
    inits = [x for x in containers if x.get("essential", True) is False]
    required = REQUIRED_ENUM_PATHS + (SIDECAR_ENUM_PATHS if is_sidecar or inits else ())
    for req in required:
        c.check(req in seen, f"enum {req} is set and checked", "not present in the file")

    # 3. Fargate / service rules.
    c.check(td.get("networkMode") == "awsvpc", "networkMode is awsvpc (required by Fargate)")
    c.check("FARGATE" in td.get("requiresCompatibilities", []), "requiresCompatibilities includes FARGATE")
    try:
        cpu, mem = int(td.get("cpu", "0")), int(td.get("memory", "0"))
    except ValueError:
        cpu, mem = 0, 0
    c.check(mem in FARGATE_SIZES.get(cpu, set()), f"cpu {td.get('cpu')} / memory {td.get('memory')} is a Fargate task size")
    c.check(sum(x.get("cpu", 0) for x in containers) <= cpu, "container cpu reservations fit in the task cpu")
    c.check(sum(x.get("memoryReservation", x.get("memory", 0)) for x in containers) <= mem,
            "container memory reservations fit in the task memory")

    names = [x.get("name") for x in containers]
    c.check(containers and all(x.get("name") and x.get("image") for x in containers),
            "every container has a name and an image (the API model leaves both optional)")
    c.check(len(names) == len(set(names)), "container names are unique")
    validators = [x for x in containers if x.get("name") == VALIDATOR_NAME]
    if not c.check(len(validators) == 1, f"exactly one container named {VALIDATOR_NAME}"):
        return c
    v = validators[0]
    c.check(v.get("essential") is True, "the validator container is essential")
    env = env_map(v)
    tls = [k for k in TLS_FILE_ENV if env.get(k)]
    hc = v.get("healthCheck", {})
    if tls:
        # `token-validator health` speaks plaintext gRPC: against the TLS port it
        # would fail every time and ECS would replace the task in a loop.
        c.check(not hc, "TLS: no container healthCheck (token-validator health has no TLS client options)")
    else:
        c.check(hc.get("command") == HEALTH_COMMAND, f"healthCheck command is {HEALTH_COMMAND}", repr(hc.get("command")))
        c.check(5 <= hc.get("interval", 30) <= 300 and 2 <= hc.get("timeout", 5) <= 60
                and 1 <= hc.get("retries", 3) <= 10 and 0 <= hc.get("startPeriod", 0) <= 300
                and hc.get("timeout", 5) < hc.get("interval", 30),
                "healthCheck interval/timeout/retries/startPeriod are within ECS limits")
    stop = v.get("stopTimeout")
    c.check(isinstance(stop, int) and DRAIN_SECS + 5 <= stop <= FARGATE_MAX_STOP_TIMEOUT,
            f"stopTimeout ({stop}) covers the {DRAIN_SECS}s drain and is <= {FARGATE_MAX_STOP_TIMEOUT} (Fargate maximum)")
    missing = [k for k in ONE_POOL_ENV if not env.get(k)]
    c.check(not missing, "one-pool environment (COGNITO_REGION, COGNITO_USER_POOL_ID, COGNITO_CLIENT_IDS) is set",
            f"missing {missing}")
    if not missing:
        c.check(env["COGNITO_USER_POOL_ID"].startswith(env["COGNITO_REGION"] + "_"),
                "COGNITO_USER_POOL_ID belongs to COGNITO_REGION")
    c.check(v.get("readonlyRootFilesystem") is True, "the validator's root filesystem is read-only")
    c.check("ALL" in v.get("linuxParameters", {}).get("capabilities", {}).get("drop", []), "the validator drops ALL capabilities")
    user = str(v.get("user", ""))
    c.check(user != "" and user.split(":")[0] not in ("0", "root"), f"the validator runs as a non-root user ({user or 'unset'})")

    all_mappings = [(x.get("name"), m) for x in containers for m in x.get("portMappings", [])]
    port_names = [m.get("name") for _, m in all_mappings if m.get("name")]
    c.check(len(port_names) == len(set(port_names)), "port mapping names are unique in the task")
    c.check(all(m.get("hostPort", m.get("containerPort")) == m.get("containerPort") for _, m in all_mappings),
            "awsvpc: hostPort is absent or equals containerPort")
    c.check(all(m.get("name") for _, m in all_mappings if m.get("appProtocol")),
            "every port mapping with appProtocol is named (Service Connect needs the name)")
    vmaps = {m.get("containerPort"): m for m in v.get("portMappings", [])}
    if is_sidecar:
        c.check(GRPC_PORT not in vmaps, f"sidecar: the validator's gRPC port {GRPC_PORT} is not published (apps use localhost)")
        c.check(env.get("TOKEN_VALIDATOR__LISTEN", "").startswith("127.0.0.1:"),
                "sidecar: the validator listens on loopback only (TOKEN_VALIDATOR__LISTEN=127.0.0.1:...)")
    elif tls:
        g = vmaps.get(GRPC_PORT, {})
        c.check(g.get("name") == "grpc" and "appProtocol" not in g and g.get("protocol", "tcp") == "tcp",
                f"TLS: port {GRPC_PORT} is mapped as name grpc, protocol tcp, no appProtocol "
                "(Service Connect's proxy cannot read gRPC inside the service's TLS)")
    else:
        g = vmaps.get(GRPC_PORT, {})
        c.check(g.get("name") == "grpc" and g.get("appProtocol") == "grpc" and g.get("protocol", "tcp") == "tcp",
                f"port {GRPC_PORT} is mapped as name grpc, protocol tcp, appProtocol grpc (Service Connect)")
        mm = vmaps.get(METRICS_PORT, {})
        c.check(mm.get("name") == "metrics" and mm.get("appProtocol") == "http",
                f"port {METRICS_PORT} is mapped as name metrics, appProtocol http")

    volumes = {x.get("name") for x in td.get("volumes", [])}
    mounts = [m.get("sourceVolume") for x in containers for m in x.get("mountPoints", [])]
    c.check(all(m in volumes for m in mounts), "every mountPoint refers to a declared volume")
    for x in containers:
        lc = x.get("logConfiguration", {})
        opts = lc.get("options", {})
        c.check(lc.get("logDriver") == "awslogs"
                and all(opts.get(k) for k in ("awslogs-group", "awslogs-region", "awslogs-stream-prefix")),
                f"container {x.get('name')} logs with awslogs (group, region, stream-prefix)")

    check_roles(c, td, is_sidecar)

    if tls or inits:
        check_tls_init(c, td, v, env, tls, inits)

    if is_sidecar:
        apps = [x for x in containers if x.get("name") != VALIDATOR_NAME and x.get("essential", True)]
        for app in apps:
            deps = {d.get("containerName"): d.get("condition") for d in app.get("dependsOn", [])}
            c.check(deps.get(VALIDATOR_NAME) == "HEALTHY",
                    f"container {app.get('name')} dependsOn {VALIDATOR_NAME} with condition HEALTHY")
            c.check(all(n in names for n in deps), f"container {app.get('name')}: dependsOn names existing containers")
            addr = env_map(app).get("TOKEN_VALIDATOR_ADDR", "")
            c.check(addr in (f"http://localhost:{GRPC_PORT}", f"http://127.0.0.1:{GRPC_PORT}"),
                    f"container {app.get('name')} reaches the validator on localhost:{GRPC_PORT}", addr)
        c.check("healthCheck" in v, "the validator has a healthCheck (needed for the HEALTHY condition)")
    return c


def check_roles(c, td, is_sidecar):
    """Execution role and task role: well-formed, one account, not the same role."""
    execution, task = td.get("executionRoleArn", ""), td.get("taskRoleArn", "")
    em, tm = ROLE_ARN.match(execution), ROLE_ARN.match(task)
    c.check(bool(em), "executionRoleArn is an IAM role ARN", execution)
    whose = "the app's and the validator's (the sidecar shares it)" if is_sidecar else "the validator's"
    c.check(bool(tm), f"taskRoleArn is an IAM role ARN, {whose}: it holds cognito-idp:AdminGetUser "
            "(deploy/iam/revocation-policy.json) for ID-token revocation checks", task or "unset")
    if em and tm:
        c.check(em.group(1) == tm.group(1), "executionRoleArn and taskRoleArn are roles of one account",
                f"{em.group(1)} vs {tm.group(1)}")
        c.check(execution != task, "the task role is not the execution role (least privilege: the containers "
                "get no image-pull, log or secret-reading rights)")


def check_tls_init(c, td, v, env, tls, inits):
    """TLS files from secrets: an init container writes them to a volume the validator mounts read-only."""
    deps = {d.get("containerName"): d.get("condition") for d in v.get("dependsOn", [])}
    for init in inits:
        name = init.get("name")
        c.check(deps.get(name) == "SUCCESS", f"the validator dependsOn init container {name} with condition SUCCESS")
        c.check(init.get("secrets"), f"init container {name} takes the TLS material from secrets (valueFrom)")
    ro_mounts = {m.get("containerPath", "").rstrip("/"): m.get("sourceVolume")
                 for m in v.get("mountPoints", []) if m.get("readOnly") is True}
    written = {m.get("sourceVolume") for x in inits for m in x.get("mountPoints", []) if m.get("readOnly") is not True}
    for key in tls:
        folder = env[key].rsplit("/", 1)[0]
        volume = ro_mounts.get(folder)
        c.check(volume is not None and volume in written,
                f"{key} lies on a read-only mount of a volume an init container writes", env[key])
    if "TOKEN_VALIDATOR__TLS__KEY_FILE" in tls or "TOKEN_VALIDATOR__TLS__CERT_FILE" in tls:
        c.check(all(k in tls for k in TLS_FILE_ENV[:2]), "TLS: both CERT_FILE and KEY_FILE are set")
    secrets = [s for x in td.get("containerDefinitions", []) for s in x.get("secrets", [])]
    region = v.get("logConfiguration", {}).get("options", {}).get("awslogs-region")
    account = td.get("executionRoleArn", "").split(":")[4] if td.get("executionRoleArn", "").count(":") >= 5 else None
    for secret in secrets:
        arn = secret.get("valueFrom", "")
        m = SECRET_ARN.match(arn) or PARAMETER_ARN.match(arn)
        c.check(bool(m) and m.group(1) == region and m.group(2) == account,
                f"secret {secret.get('name')}: a full Secrets Manager or SSM parameter ARN in {region}, account {account}",
                arn)
    c.check(not secrets or td.get("executionRoleArn"),
            "secrets are read with the execution role (executionRoleArn is set; it needs "
            "secretsmanager:GetSecretValue / ssm:GetParameters on them)")


def main(argv):
    if len(argv) < 2:
        print(__doc__, file=sys.stderr)
        return 2
    session = botocore.session.get_session()
    shape = session.get_service_model("ecs").operation_model("RegisterTaskDefinition").input_shape
    total_failed = 0
    for path in argv[1:]:
        c = validate_file(path, shape)
        print(f"{path}: {c.passed} of {c.passed + c.failed} checks ok")
        total_failed += c.failed
    return 1 if total_failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
