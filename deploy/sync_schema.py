#!/usr/bin/env python3
"""Writes the configuration's JSON Schema where it is published, from the Rust types.

  deploy/sync_schema.py [BINARY]      (default: target/debug/token-validator)

- config.schema.json at the repository's root: `token-validator config-schema`;
- the `config` section of helm/token-validator/values.schema.json:
  `token-validator config-schema --chart` (the rest of that file is kept as it is,
  key order included).

tests/config_schema.rs fails when either is stale; run this after changing a
config type, its doc comment or a range in src/config/ranges.rs.
"""

import json
import pathlib
import subprocess
import sys

ROOT = pathlib.Path(__file__).resolve().parent.parent


def schema(binary, *args):
    out = subprocess.run([binary, "config-schema", *args], check=True, capture_output=True, text=True, timeout=60)
    return json.loads(out.stdout)


def main():
    binary = sys.argv[1] if len(sys.argv) > 1 else str(ROOT / "target/debug/token-validator")
    (ROOT / "config.schema.json").write_text(json.dumps(schema(binary), indent=2) + "\n", encoding="utf-8")
    values_path = ROOT / "helm/token-validator/values.schema.json"
    values = json.loads(values_path.read_text(encoding="utf-8"))
    values["properties"]["config"] = schema(binary, "--chart")
    values_path.write_text(json.dumps(values, indent=2) + "\n", encoding="utf-8")
    print(f"wrote {ROOT / 'config.schema.json'} and {values_path} (properties.config)")


if __name__ == "__main__":
    main()
