#!/usr/bin/env python3
"""README's configuration table against the service (run by deploy/check.sh after
the Rust build). The table is for people; config.schema.json, generated from the
Rust types, and `token-validator check-config` decide which keys exist.

  check_config_table.py readme README.md --bin BIN --schema config.schema.json --chart CHART --helm HELM
      Every key of the table (one backticked key a row) is in config.schema.json
      and, set alone to a valid value (for a pool key the chart's example pool's;
      else the schema's default, else the table's, else the schema's bounds), is
      accepted by the chart's values.schema.json as config.<key> (except listen,
      metrics.listen, metrics.enabled and gateway.http_listen, which the chart
      writes itself) and by check-config. All of them set at once through Helm
      values arrive unchanged in the rendered config.yaml, which passes
      check-config.
  check_config_table.py readme-complete README.md --schema config.schema.json
      Every key of config.schema.json has a row in the table.

Prints one line per check; exits non-zero if any failed. Needs PyYAML and jsonschema.
"""

import copy
import json
import os
import re
import subprocess
import sys
import tempfile

import yaml

sys.dont_write_bytecode = True  # no __pycache__ beside the scripts
import check_config  # noqa: E402
from check_config import TLS_FILE_KEYS, accepted, check, option, rendered_objects, stand_in_files  # noqa: E402

# Written by the chart from listenAddress, containerPorts, metrics.enabled and
# gateway.enabled; values.schema.json leaves the first three out of `config` on
# purpose, and the chart's templates refuse config.gateway.http_listen.
CHART_OWNED = ("listen", "metrics.listen", "metrics.enabled", "gateway.http_listen")


def readme_rows(path):
    """{key: default column} of the table under "## Configuration"; one backticked key a row."""
    with open(path, encoding="utf-8") as f:
        text = f.read()
    match = re.search(r"^## Configuration\n(.*?)(?=^## )", text, re.S | re.M)
    if not match:
        raise SystemExit(f"{path}: no '## Configuration' section")
    rows, bad = {}, []
    for line in match.group(1).splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if not line.startswith("| `") or len(cells) < 3:
            continue
        key = re.fullmatch(r"`([a-z0-9_]+(?:\[\])?(?:\.[a-z0-9_]+(?:\[\])?)*)`", cells[0])
        if not key:
            bad.append(cells[0])
            continue
        rows[key.group(1)] = cells[1]
    if bad:
        raise SystemExit(f"{path}: configuration table rows must name one key each (`section.key`), not {bad}")
    return rows


def resolve(schema, node):
    """Follows $ref and the allOf/anyOf/oneOf wrappers schemars puts around a referenced or optional type."""
    while True:
        if "$ref" in node:
            target = schema
            for part in node["$ref"].lstrip("#/").split("/"):
                target = target[part]
            node = target
            continue
        for combinator in ("allOf", "anyOf", "oneOf"):
            branches = [b for b in node.get(combinator, []) if b.get("type") != "null"]
            if len(branches) == 1 and "properties" not in node:
                node = branches[0]
                break
        else:
            return node


def schema_node(schema, key):
    """(parent object schema, property schema) of a table key, or None if the schema has no such key."""
    node, parent = resolve(schema, schema), None
    for part in key.split("."):
        array = part.endswith("[]")
        part = part.removesuffix("[]")
        props = node.get("properties", {})
        if part not in props:
            return None
        parent, node = node, resolve(schema, props[part])
        if array:
            node = resolve(schema, node.get("items", {}))
    return parent, node


def schema_keys(schema, node=None, prefix=""):
    """Every leaf key of the schema, in the table's spelling (`pools[].name`)."""
    node = resolve(schema, node if node is not None else schema)
    keys = []
    for name, sub in node.get("properties", {}).items():
        sub = resolve(schema, sub)
        if "properties" in sub:
            keys += schema_keys(schema, sub, f"{prefix}{name}.")
        elif "properties" in resolve(schema, sub.get("items", {})):
            keys += schema_keys(schema, sub["items"], f"{prefix}{name}[].")
        else:
            keys.append(prefix + name)
    return keys


def table_value(cell, pool):
    """The table's default as a value: its first backticked span as YAML, pool placeholders filled."""
    span = re.match(r"`([^`]*)`", cell)
    if not span:
        return []
    text = span.group(1)
    issuer = "https://cognito-idp.{region}.amazonaws.com/{user_pool_id}"
    text = text.replace("{issuer}", issuer).replace("{region}", pool["region"]).replace("{user_pool_id}", pool["user_pool_id"])
    try:
        return [yaml.safe_load(text)]
    except yaml.YAMLError:
        return []


def with_key(pool, key, value, tls_files):
    """A config of `pool` with `key` set to `value` (and, in its section, what the section requires)."""
    cfg = {"pools": [copy.deepcopy(pool)]}
    if key.startswith("pools[]."):
        *sections, last = key.split(".", 1)[1].split(".")  # pools[].revocation.check
        node = cfg["pools"][0]
        for section in sections:
            node = node.setdefault(section, {})
        node[last] = value
        return cfg
    *sections, last = key.split(".")
    node = cfg
    for section in sections:
        if section.endswith("[]"):  # a list of objects (gateway.routes[]): its first item
            node = node.setdefault(section[:-2], [{}])[0]
        else:
            node = node.setdefault(section, {})
    node[last] = value
    if sections == ["tls"]:
        for required in ("cert_file", "key_file"):
            node.setdefault(required, tls_files[required])
    return cfg


def merged(a, b):
    out = copy.deepcopy(a)
    for k, v in b.items():
        if isinstance(v, dict) and isinstance(out.get(k), dict):
            out[k] = merged(out[k], v)
        elif k != "pools" and _one_object_list(v) and _one_object_list(out.get(k)):
            out[k] = [merged(out[k][0], v[0])]
        else:
            out[k] = v
    return out


def _one_object_list(value):
    return isinstance(value, list) and len(value) == 1 and isinstance(value[0], dict)


def without_chart_owned(cfg):
    cfg = copy.deepcopy(cfg)
    for key in CHART_OWNED:
        *sections, last = key.split(".")
        node = cfg
        for section in sections:
            node = node.get(section, {})
        node.pop(last, None)
        if sections and cfg.get(sections[0]) == {}:
            del cfg[sections[0]]
    return cfg


def get_key(cfg, key):
    node = cfg["pools"][0] if key.startswith("pools[].") else cfg
    for part in key.removeprefix("pools[].").split("."):
        array = part.endswith("[]")
        part = part.removesuffix("[]")
        if not isinstance(node, dict) or part not in node:
            return KeyError
        node = node[part]
        if array:
            if not isinstance(node, list) or not node:
                return KeyError
            node = node[0]
    return node


def readme(readme_path, binary, schema_path, chart_dir, helm):
    import jsonschema

    rows = readme_rows(readme_path)
    with open(schema_path, encoding="utf-8") as f:
        schema = json.load(f)
    with open(os.path.join(chart_dir, "values.schema.json"), encoding="utf-8") as f:
        chart_validator = jsonschema.Draft7Validator(json.load(f))
    config_validator = jsonschema.Draft7Validator(schema)
    with open(os.path.join(chart_dir, "values.yaml"), encoding="utf-8") as f:
        chart_defaults = yaml.safe_load(f)
    pool = chart_defaults["config"]["pools"][0]
    print(f"  {len(rows)} keys in {os.path.basename(readme_path)}'s configuration table; "
          f"example pool {pool['name']} ({pool['user_pool_id']}) from the chart's values.yaml")

    with tempfile.TemporaryDirectory(prefix="tv-check-config.") as tmp:
        tls_files = stand_in_files(tmp, TLS_FILE_KEYS)
        everything = {"pools": [dict(pool)]}
        for key, default_cell in rows.items():
            found = schema_node(schema, key)
            if not check(found is not None, f"{key}: in config.schema.json"):
                continue
            _, node = found
            last = key.rsplit(".", 1)[-1]
            candidates = []
            if key.startswith("pools[].") and last in pool:
                candidates.append(pool[last])
            if last in TLS_FILE_KEYS:
                candidates.append(tls_files[last])
            if "default" in node:
                candidates.append(node["default"])
            candidates += node.get("examples", [])
            candidates += table_value(default_cell, pool)
            types = node.get("type", [])
            types = [types] if isinstance(types, str) else types
            if "integer" in types:
                candidates += [node[b] for b in ("minimum", "maximum") if b in node] + [1]
            if "boolean" in types:
                candidates += [False, True]
            value = next((v for v in candidates if v is not None
                          and not list(config_validator.iter_errors(with_key(pool, key, v, tls_files)))), KeyError)
            if not check(value is not KeyError, f"{key}: has a value config.schema.json accepts",
                         f"tried {candidates}; give the table a default that is a valid value"):
                continue
            cfg = with_key(pool, key, value, tls_files)
            everything = merged(everything, cfg)
            if key in CHART_OWNED:
                print(f"  skip {key}: chart values (the chart writes it from listenAddress, containerPorts, "
                      "metrics.enabled, gateway.enabled)")
            else:
                values = dict(chart_defaults, config=without_chart_owned(cfg))
                errors = [f"/{'/'.join(map(str, e.absolute_path))}: {e.message}" for e in chart_validator.iter_errors(values)]
                check(not errors, f"{key}: {json.dumps(value)} accepted by values.schema.json as config.{key}", "; ".join(errors))
            path = os.path.join(tmp, "config.yaml")
            with open(path, "w", encoding="utf-8") as f:
                yaml.safe_dump(cfg, f)
            accepted(binary, path, {}, f"{key}: {json.dumps(value)} accepted by check-config")

        # All of them at once, through Helm: nothing is dropped on the way to config.yaml.
        values_path = os.path.join(tmp, "every-key-values.yaml")
        with open(values_path, "w", encoding="utf-8") as f:
            yaml.safe_dump({"config": without_chart_owned(everything)}, f)
        out = subprocess.run([helm, "template", "tv", chart_dir, "-f", values_path],
                             capture_output=True, text=True, timeout=120, check=False)
        if not check(out.returncode == 0, "helm template with every key of the table set", out.stderr.strip()):
            return
        rendered_path = os.path.join(tmp, "every-key.yaml")
        with open(rendered_path, "w", encoding="utf-8") as f:
            f.write(out.stdout)
        raw, _ = rendered_objects(rendered_path)
        cfg = yaml.safe_load(raw)
        dropped = [k for k in rows if k not in CHART_OWNED and get_key(cfg, k) != get_key(everything, k)]
        check(not dropped, f"the rendered config.yaml carries all {len(rows) - len(CHART_OWNED)} keys set in values",
              f"dropped or changed: {dropped}")
        config_path = os.path.join(tmp, "config.yaml")
        with open(config_path, "w", encoding="utf-8") as f:
            f.write(raw)
        accepted(binary, config_path, {}, "that config.yaml passes check-config")


def readme_complete(readme_path, schema_path):
    rows = readme_rows(readme_path)
    with open(schema_path, encoding="utf-8") as f:
        schema = json.load(f)
    keys = schema_keys(schema)
    missing = [k for k in keys if k not in rows]
    check(not missing, f"every one of the {len(keys)} keys of config.schema.json has a row in the table",
          f"missing: {missing}")


def main(argv):
    command, args = (argv[1], argv[2:]) if len(argv) > 2 else (None, [])
    schema = option(args, "--schema")
    needed = (option(args, "--bin"), option(args, "--chart"), option(args, "--helm"))
    if command == "readme" and schema and all(needed):
        readme(args[0], needed[0], schema, needed[1], needed[2])
    elif command == "readme-complete" and schema:
        readme_complete(args[0], schema)
    else:
        print(__doc__, file=sys.stderr)
        return 2
    return check_config.summary()


if __name__ == "__main__":
    sys.exit(main(sys.argv))
