//! The JSON Schema of the configuration, generated from the Rust types: the
//! committed `config.schema.json` (for editors, `# yaml-language-server:
//! $schema=…`) and the `config` section of the Helm chart's
//! `values.schema.json` are both this, so no list of keys is kept by hand
//! anywhere else. `tests/config_schema.rs` fails when either file is stale.
//!
//! Draft-07 with every subschema inlined: Helm validates values with a
//! draft-07 validator, and a `$ref` would not resolve once the section is
//! nested inside the chart's schema.

use schemars::generate::SchemaSettings;
use serde_json::{Value, json};

use super::{Config, PoolConfig, TlsConfig};

/// The schema of the service's configuration file.
pub fn json_schema() -> Value {
    let generator = SchemaSettings::draft07()
        .with(|settings| settings.inline_subschemas = true)
        .into_generator();
    let mut schema = generator.into_root_schema_for::<Config>().to_value();
    add_ranges(&mut schema);
    schema
}

/// The schema of the chart's `config` value: the file's, less what the chart
/// writes itself (`listen`, `metrics.listen` and `gateway.http_listen` from
/// `listenAddress` and `containerPorts`, `metrics.enabled` and the gateway
/// port from `metrics.enabled` and `gateway.enabled`), with at least
/// one pool (the chart's ConfigMap is where pools are listed), and with the
/// TLS file paths optional (the chart fills them from `tls.secretName`;
/// values.schema.json requires them when no Secret is named).
pub fn chart_schema() -> Value {
    let mut schema = json_schema();
    let object = schema.as_object_mut().expect("an object schema");
    for meta in ["$schema", "title"] {
        object.remove(meta);
    }
    let properties = &mut schema["properties"];
    remove(properties, "listen");
    remove(&mut properties["metrics"]["properties"], "listen");
    remove(&mut properties["metrics"]["properties"], "enabled");
    remove(&mut properties["gateway"]["properties"], "http_listen");
    properties["pools"]["minItems"] = json!(1);
    if let Some(tls) = object_schema(&mut properties["tls"]).and_then(Value::as_object_mut) {
        tls.remove("required");
    }
    schema["required"] = json!(["pools"]);
    schema["description"] = json!(
        "The service's configuration file (config.schema.json at the repository's root, \
         generated from the Rust types), less listen, metrics.listen and metrics.enabled, \
         which the chart writes."
    );
    schema
}

fn remove(properties: &mut Value, key: &str) {
    if let Some(properties) = properties.as_object_mut() {
        properties.remove(key);
    }
}

/// Puts each numeric key's range (`ranges.rs`, the one table checked at load)
/// into the schema as `minimum`/`maximum`.
fn add_ranges(schema: &mut Value) {
    let every_key = Config {
        pools: vec![PoolConfig::new("p", "us-east-1", "us-east-1_p")],
        tls: Some(TlsConfig {
            cert_file: Default::default(),
            key_file: Default::default(),
            client_ca_file: None,
            allowed_client_names: Vec::new(),
            reload_interval_secs: 1,
        }),
        ..Config::default()
    };
    for (key, _, min, max) in every_key.numeric_keys() {
        let mut node = &mut *schema;
        for part in key.split('.') {
            // `pools[0]`: the schema of any item of `pools`.
            let (name, item) = match part.split_once('[') {
                Some((name, _)) => (name, true),
                None => (part, false),
            };
            node = object_schema(node)
                .and_then(|object| object.get_mut("properties"))
                .and_then(|properties| properties.get_mut(name))
                .unwrap_or_else(|| panic!("{key} is in the range table but not in the schema"));
            if item {
                node = node.get_mut("items").expect("an array schema");
            }
        }
        node["minimum"] = json!(min);
        node["maximum"] = json!(max);
    }
}

/// The object schema inside `schema`: itself, or for an optional section the
/// non-null member of its `anyOf`.
fn object_schema(schema: &mut Value) -> Option<&mut Value> {
    if schema.get("properties").is_some() {
        return Some(schema);
    }
    schema
        .get_mut("anyOf")?
        .as_array_mut()?
        .iter_mut()
        .find(|member| member.get("properties").is_some())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_numeric_key_carries_its_range_and_sections_refuse_unknown_keys() {
        let schema = json_schema();
        let jwks = &schema["properties"]["jwks"];
        assert_eq!(jwks["additionalProperties"], json!(false));
        let refresh = &jwks["properties"]["refresh_interval_secs"];
        assert_eq!(refresh["minimum"], json!(1));
        assert_eq!(refresh["maximum"], json!(86_400));
        assert_eq!(refresh["default"], json!(300));
        assert!(!schema.to_string().contains("$ref"), "inlined: {schema}");
    }

    #[test]
    fn the_chart_schema_leaves_out_what_the_chart_writes() {
        let schema = chart_schema();
        assert!(schema["properties"].get("listen").is_none());
        assert!(
            schema["properties"]["metrics"]["properties"]
                .get("listen")
                .is_none()
        );
        assert!(
            schema["properties"]["metrics"]["properties"]
                .get("idle_timeout_secs")
                .is_some()
        );
        assert_eq!(schema["properties"]["pools"]["minItems"], json!(1));
    }
}
