#!/usr/bin/env python3
"""Checks the token-validator Grafana dashboard (standard library only).

  python3 deploy/grafana/check_dashboard.py

* deploy/grafana/token-validator.json and the copy the Helm chart ships
  (helm/token-validator/dashboards/token-validator.json) are byte-identical;
* the JSON is an importable dashboard: uid, title, schemaVersion, a `datasource`
  variable of type prometheus and a `pool` variable from
  label_values(token_validator_validations_total, pool);
* every panel has a unique integer id and a gridPos inside the 24-column grid,
  with no two panels overlapping;
* every query panel and target uses the `${datasource}` variable;
* every PromQL expression names only metrics the service exposes (the allowlist
  below), only labels those metrics carry, and only known PromQL functions;
  every metric family except those in NOT_ON_DASHBOARD is on some panel;
* the JSON lines fit in the rendered ConfigMap (yamllint allows 240 columns,
  the chart indents by 4);
* docs/OBSERVABILITY.md, if present, names every metric and no other
  token_validator_* / rpc_server_* series.

Prints one line per failed check and ends with "dashboard: N passed, M failed".
"""

import json
import os
import re
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
DASHBOARD = os.path.join(ROOT, "deploy", "grafana", "token-validator.json")
CHART_COPY = os.path.join(ROOT, "helm", "token-validator", "dashboards", "token-validator.json")
DOC = os.path.join(ROOT, "docs", "OBSERVABILITY.md")
MAX_LINE = 236
DATASOURCE = {"type": "prometheus", "uid": "${datasource}"}

# The service's Prometheus exposition: family -> (type, labels). Every series
# also carries otel_scope_name; Prometheus adds job and instance.
POOL = "pool"
FAMILIES = {
    "token_validator_validations_total": ("counter", {"result", "reason", "token_use", POOL}),
    "token_validator_validation_duration_seconds": ("histogram", {"rpc", "cache"}),
    "rpc_server_duration_seconds": ("histogram", {"rpc_system", "rpc_service", "rpc_method", "rpc_grpc_status_code"}),
    "rpc_server_active_requests": ("gauge", {"rpc_method"}),
    "token_validator_token_cache_hits_total": ("counter", set()),
    "token_validator_token_cache_misses_total": ("counter", set()),
    "token_validator_token_cache_entries": ("gauge", set()),
    "token_validator_token_cache_weighted_size_bytes": ("gauge", set()),
    "token_validator_jwks_fetches_total": ("counter", {POOL, "result"}),
    "token_validator_jwks_fetch_duration_seconds": ("histogram", {POOL}),
    "token_validator_jwks_keys": ("gauge", {POOL}),
    "token_validator_pool_ready": ("gauge", {POOL}),
    "token_validator_jwks_key_age_seconds": ("gauge", {POOL}),
    "token_validator_jwks_unknown_kid_refetches_total": ("counter", {POOL}),
    "token_validator_jwks_unknown_kid_suppressed_total": ("counter", {POOL}),
    "token_validator_jwks_rotations_total": ("counter", {POOL}),
    "token_validator_get_user_lookups_total": ("counter", {"result"}),
    "token_validator_get_user_duration_seconds": ("histogram", set()),
    "token_validator_get_user_cache_hits_total": ("counter", set()),
    "token_validator_audit_suppressed_total": ("counter", set()),
    "token_validator_accept_errors_total": ("counter", {"listener"}),
    "token_validator_connections_closed_total": ("counter", {"listener", "reason"}),
    "token_validator_answers_refused_total": ("counter", set()),
    "target_info": ("gauge", {"service_name"}),
}
COMMON_LABELS = {"otel_scope_name", "job", "instance", "__name__"}
# token_validator_pool_ready (per-pool readiness, new with pools[].required)
# has no panel yet; docs/OBSERVABILITY.md documents it and its alert rule.
# The connection bounds' counters (src/net/) are alert material, documented there too.
NOT_ON_DASHBOARD = {
    "target_info",
    "token_validator_pool_ready",
    "token_validator_accept_errors_total",
    "token_validator_connections_closed_total",
    "token_validator_answers_refused_total",
}

# series name -> (family, labels)
SERIES = {}
for fam, (kind, labels) in FAMILIES.items():
    if kind == "histogram":
        SERIES[fam + "_bucket"] = (fam, labels | {"le"})
        SERIES[fam + "_sum"] = (fam, labels)
        SERIES[fam + "_count"] = (fam, labels)
    else:
        SERIES[fam] = (fam, labels)

FUNCTIONS = {
    "abs", "absent", "absent_over_time", "avg", "avg_over_time", "bottomk", "ceil", "changes", "clamp",
    "clamp_max", "clamp_min", "count", "count_over_time", "delta", "deriv", "floor", "group", "histogram_quantile",
    "idelta", "increase", "irate", "label_replace", "last_over_time", "max", "max_over_time", "min",
    "min_over_time", "quantile", "quantile_over_time", "rate", "resets", "round", "scalar", "sort", "sort_desc",
    "stddev", "sum", "sum_over_time", "time", "timestamp", "topk", "vector",
}
KEYWORDS = {"by", "without", "on", "ignoring", "group_left", "group_right", "and", "or", "unless", "bool", "offset"}

passed = 0
failed = 0


def check(ok, what, detail=""):
    global passed, failed
    if ok:
        passed += 1
    else:
        failed += 1
        print(f"FAIL  {what}" + (f": {detail}" if detail else ""))
    return ok


def parse_expr(expr):
    """Returns (selectors [(series, {label,...})], grouping labels, functions, bare words, variables)."""
    variables = set(re.findall(r"\$\{?(\w+)", expr))
    no_strings = re.sub(r'"(?:[^"\\]|\\.)*"', '""', expr)
    no_ranges = re.sub(r"\[[^\]]*\]", "", no_strings)
    selectors = []
    for m in re.finditer(r"([A-Za-z_:][\w:]*)?\s*\{([^}]*)\}", no_ranges):
        labels = set(re.findall(r"([A-Za-z_]\w*)\s*(?:=~|!~|!=|=)", m.group(2)))
        selectors.append((m.group(1), labels))
    no_matchers = re.sub(r"\{[^}]*\}", "", no_ranges)
    grouping = set()
    for m in re.finditer(r"\b(?:by|without|on|ignoring|group_left|group_right)\s*\(([^)]*)\)", no_matchers):
        grouping |= {x.strip() for x in m.group(1).split(",") if x.strip()}
    bare = re.sub(r"\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)", r"\1", no_matchers)
    functions, words = set(), []
    # A function call, or an aggregation with its grouping first: `sum by (le) (...)`.
    for m in re.finditer(r"(?<![\w.$])([A-Za-z_:][\w:]*)(\s*\(|\s+(?:by|without)\b)?", bare):
        if m.group(2) and m.group(1) not in KEYWORDS:
            functions.add(m.group(1))
        else:
            words.append(m.group(1))
    return selectors, grouping, functions, words, variables


def check_expr(where, expr, defined_vars):
    selectors, grouping, functions, words, variables = parse_expr(expr)
    metrics = [w for w in words if w not in KEYWORDS]
    unknown = sorted(set(metrics) - set(SERIES))
    check(not unknown, f"{where}: metric names are the service's", f"unknown {unknown} in {expr!r}")
    check(metrics, f"{where}: queries a metric", expr)
    bad_fn = sorted(functions - FUNCTIONS)
    check(not bad_fn, f"{where}: known PromQL functions", f"{bad_fn}")
    labels_of_expr = set(COMMON_LABELS)
    for name in metrics:
        labels_of_expr |= SERIES.get(name, (None, set()))[1]
    for name, labels in selectors:
        allowed = COMMON_LABELS | SERIES.get(name, (None, set()))[1]
        check(labels <= allowed, f"{where}: {name} matchers use its labels", f"unknown {sorted(labels - allowed)}")
    check(grouping <= labels_of_expr, f"{where}: by()/on() labels exist on the queried metrics",
          f"unknown {sorted(grouping - labels_of_expr)} in {expr!r}")
    undefined = sorted(v for v in variables if not v.startswith("__") and v not in defined_vars)
    check(not undefined, f"{where}: template variables are defined", f"{undefined}")
    return {SERIES[m][0] for m in metrics if m in SERIES}


def overlaps(a, b):
    return (a["x"] < b["x"] + b["w"] and b["x"] < a["x"] + a["w"]
            and a["y"] < b["y"] + b["h"] and b["y"] < a["y"] + a["h"])


def main():
    texts = {}
    for path in (DASHBOARD, CHART_COPY):
        try:
            with open(path, encoding="utf-8") as f:
                texts[path] = f.read()
        except OSError as e:
            check(False, f"read {os.path.relpath(path, ROOT)}", str(e))
    if len(texts) != 2:
        return finish()
    check(texts[DASHBOARD] == texts[CHART_COPY], "deploy/grafana copy is identical to the chart's dashboard")
    try:
        dash = json.loads(texts[DASHBOARD])
    except ValueError as e:
        check(False, "dashboard is valid JSON", str(e))
        return finish()
    check(True, "dashboard is valid JSON")
    long_lines = [i + 1 for i, line in enumerate(texts[DASHBOARD].splitlines()) if len(line) > MAX_LINE]
    check(not long_lines, f"lines <= {MAX_LINE} characters (ConfigMap passes yamllint)", f"lines {long_lines}")

    check(isinstance(dash.get("uid"), str) and dash["uid"] and len(dash["uid"]) <= 40, "uid set (<= 40 chars)")
    check(isinstance(dash.get("title"), str) and dash["title"], "title set")
    check(isinstance(dash.get("schemaVersion"), int) and 36 <= dash["schemaVersion"] <= 41, "schemaVersion 36..41",
          str(dash.get("schemaVersion")))
    check(dash.get("id") is None, "id is null (importable into any Grafana)")

    variables = {v.get("name"): v for v in dash.get("templating", {}).get("list", [])}
    ds = variables.get("datasource", {})
    check(ds.get("type") == "datasource" and ds.get("query") == "prometheus",
          "variable datasource is a prometheus data source picker")
    pool = variables.get("pool", {})
    query = pool.get("query")
    query = query.get("query") if isinstance(query, dict) else query
    check(pool.get("type") == "query" and query == "label_values(token_validator_validations_total, pool)"
          and pool.get("datasource") == DATASOURCE,
          "variable pool = label_values(token_validator_validations_total, pool) on ${datasource}")
    check(pool.get("includeAll") and pool.get("multi") and pool.get("allValue") == ".*",
          "variable pool is multi-select with All = .*")
    inputs = [i.get("name") for i in dash.get("__inputs", [])]
    check(not inputs, "no __inputs (the Grafana sidecar does not resolve them)", f"{inputs}")

    panels = dash.get("panels")
    if not check(isinstance(panels, list) and panels, "panels is a non-empty list"):
        return finish()
    ids = [p.get("id") for p in panels]
    check(all(isinstance(i, int) for i in ids) and len(ids) == len(set(ids)), "panel ids are unique integers",
          f"{ids}")
    grids = []
    for p in panels:
        g = p.get("gridPos", {})
        name = f"panel {p.get('id')} {p.get('title')!r}"
        ok = check(all(isinstance(g.get(k), int) for k in "hwxy") and g["w"] > 0 and g["h"] > 0
                   and 0 <= g["x"] and g["x"] + g["w"] <= 24 and g["y"] >= 0,
                   f"{name}: gridPos h/w/x/y inside the 24-column grid", f"{g}")
        if ok:
            grids.append((name, g))
        check(p.get("type") in {"row", "timeseries", "stat"}, f"{name}: panel type known", str(p.get("type")))
    clashes = [(a, b) for i, (a, ga) in enumerate(grids) for b, gb in grids[i + 1:] if overlaps(ga, gb)]
    check(not clashes, "no two panels overlap", f"{clashes}")

    used = set()
    for p in panels:
        name = f"panel {p.get('id')} {p.get('title')!r}"
        if p.get("type") == "row":
            check(not p.get("targets") and p.get("collapsed") is False and p.get("panels") == [],
                  f"{name}: expanded row without queries")
            continue
        check(p.get("datasource") == DATASOURCE, f"{name}: datasource is ${{datasource}}", f"{p.get('datasource')}")
        check(p.get("title") and p.get("description"), f"{name}: has title and description")
        targets = p.get("targets", [])
        if not check(targets, f"{name}: has queries"):
            continue
        refs = [t.get("refId") for t in targets]
        check(len(refs) == len(set(refs)) and all(refs), f"{name}: refIds unique", f"{refs}")
        for t in targets:
            where = f"{name} {t.get('refId')}"
            check(t.get("datasource") == DATASOURCE, f"{where}: datasource is ${{datasource}}")
            check(isinstance(t.get("expr"), str) and t["expr"].strip(), f"{where}: has an expr")
            used |= check_expr(where, t.get("expr", ""), set(variables))
            check(isinstance(t.get("legendFormat"), str), f"{where}: has a legendFormat")
    missing = sorted(set(FAMILIES) - NOT_ON_DASHBOARD - used)
    check(not missing, f"every metric family is on a panel ({len(FAMILIES) - len(NOT_ON_DASHBOARD)})", f"{missing}")

    key_age = [p for p in panels if any("token_validator_jwks_key_age_seconds" in t.get("expr", "")
                                        for t in p.get("targets", []))]
    check(key_age and all(any(s.get("value") == 600 for s in p["fieldConfig"]["defaults"]["thresholds"]["steps"])
                          for p in key_age),
          "key age panels have a threshold at 600 s (2x the default refresh)")

    if os.path.exists(DOC):
        with open(DOC, encoding="utf-8") as f:
            doc = f.read()
        named = set(re.findall(r"\b(?:token_validator|rpc_server)_\w+", doc))
        unknown = sorted(n for n in named if n not in SERIES and n not in FAMILIES)
        check(not unknown, "docs/OBSERVABILITY.md names only real series", f"{unknown}")
        absent = sorted(f for f in FAMILIES if f"`{f}`" not in doc)
        check(not absent, f"docs/OBSERVABILITY.md lists all {len(FAMILIES)} metric families", f"{absent}")
    return finish()


def finish():
    print(f"dashboard: {passed} passed, {failed} failed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
