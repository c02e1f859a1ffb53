//! Kubernetes manifests checked against the real CRD schemas, offline: each CRD's
//! `openAPIV3Schema` (of the served version the manifest names) made into the JSON Schema the API
//! server enforces, and each manifest object validated against it.
//!
//! What the API server does that plain JSON Schema does not, and how it is made so here:
//! - a field the schema does not list is pruned (structural schemas), so a misspelt field would
//!   vanish silently; here every object schema with `properties` and without
//!   `x-kubernetes-preserve-unknown-fields` or `additionalProperties` refuses other fields, so a
//!   wrong field is an error;
//! - `x-kubernetes-int-or-string` takes an integer or a string, `nullable` takes null;
//! - `metadata` is the API server's ObjectMeta: here a name (DNS-1123 subdomain), a namespace
//!   (DNS-1123 label), labels and annotations, and nothing else.
//!
//! Not checked: the CRDs' CEL rules (`x-kubernetes-validations`) and what a controller checks
//! beyond the schema (references resolving, Envoy's own validation of config inside an
//! EnvoyFilter or EnvoyPatchPolicy, whose values the CRDs leave open).

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use serde::Deserialize;
use serde_json::{json, Value};

/// `../shared/crds` (see its README), the CRDs the steering side keeps for offline checks.
pub fn shared_crds() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/crds")
}

/// Every document of a YAML stream, as JSON values (empty documents skipped).
pub fn yaml_documents(text: &str) -> Vec<Value> {
    serde_yaml::Deserializer::from_str(text)
        .map(|document| Value::deserialize(document).unwrap())
        .filter(|value| !value.is_null())
        .collect()
}

/// The CRD schemas found in `dirs`, by (group, kind): each served version's schema.
pub struct Crds {
    schemas: HashMap<(String, String), Vec<(String, Value)>>,
}

impl Crds {
    pub fn load(dirs: &[PathBuf]) -> Crds {
        let mut schemas: HashMap<(String, String), Vec<(String, Value)>> = HashMap::new();
        for dir in dirs {
            let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
                .unwrap_or_else(|error| panic!("{}: {error}", dir.display()))
                .map(|entry| entry.unwrap().path())
                .filter(|path| path.extension().is_some_and(|ext| ext == "yaml"))
                .collect();
            files.sort();
            for file in files {
                let text = std::fs::read_to_string(&file).unwrap();
                for crd in yaml_documents(&text) {
                    if crd["kind"] != "CustomResourceDefinition" {
                        continue;
                    }
                    let group = crd["spec"]["group"].as_str().unwrap().to_string();
                    let kind = crd["spec"]["names"]["kind"].as_str().unwrap().to_string();
                    let versions = crd["spec"]["versions"]
                        .as_array()
                        .unwrap()
                        .iter()
                        .filter(|version| version["served"] == true)
                        .map(|version| {
                            (
                                version["name"].as_str().unwrap().to_string(),
                                version["schema"]["openAPIV3Schema"].clone(),
                            )
                        })
                        .collect();
                    schemas.insert((group, kind), versions);
                }
            }
        }
        Crds { schemas }
    }

    /// Whether a CRD for the object's group and kind is loaded.
    pub fn knows(&self, object: &Value) -> bool {
        self.schemas.contains_key(&group_kind(object))
    }

    /// The object's errors against its CRD's schema, each as `path: problem`; empty when valid.
    pub fn errors(&self, object: &Value) -> Vec<String> {
        let (group, kind) = group_kind(object);
        let version = object["apiVersion"]
            .as_str()
            .and_then(|api| api.rsplit('/').next())
            .unwrap_or_default();
        let Some(versions) = self.schemas.get(&(group.clone(), kind.clone())) else {
            return vec![format!("no CRD for {kind} in group {group}")];
        };
        let Some((_, schema)) = versions.iter().find(|(name, _)| name == version) else {
            return vec![format!(
                "{kind}: version {version:?} is not served by its CRD"
            )];
        };
        let mut schema = schema.clone();
        structural(&mut schema);
        // Every object has these at its root, whether or not the CRD's schema lists them.
        schema["properties"]["apiVersion"] = json!({ "type": "string" });
        schema["properties"]["kind"] = json!({ "type": "string" });
        schema["properties"]["metadata"] = object_meta();
        schema["required"] = json!(["apiVersion", "kind", "metadata"]);
        let validator = jsonschema::validator_for(&schema).unwrap();
        validator
            .iter_errors(object)
            .map(|error| format!("{kind} {}: {error}", error.instance_path()))
            .collect()
    }
}

fn group_kind(object: &Value) -> (String, String) {
    let api_version = object["apiVersion"].as_str().unwrap_or_default();
    let group = api_version
        .rsplit_once('/')
        .map_or("", |(group, _)| group)
        .to_string();
    (
        group,
        object["kind"].as_str().unwrap_or_default().to_string(),
    )
}

/// The schema as the API server enforces it (see the module's comment).
pub fn structural(schema: &mut Value) {
    let Some(map) = schema.as_object_mut() else {
        return;
    };
    let preserves_unknown =
        map.get("x-kubernetes-preserve-unknown-fields") == Some(&Value::Bool(true));
    if map.contains_key("properties")
        && !map.contains_key("additionalProperties")
        && !preserves_unknown
    {
        map.insert("additionalProperties".into(), Value::Bool(false));
    }
    if map.get("x-kubernetes-int-or-string") == Some(&Value::Bool(true))
        && !map.contains_key("anyOf")
    {
        map.remove("type");
        map.insert(
            "anyOf".into(),
            json!([{ "type": "integer" }, { "type": "string" }]),
        );
    }
    if map.get("nullable") == Some(&Value::Bool(true)) {
        if let Some(kind) = map.get("type").cloned() {
            map.insert("type".into(), json!([kind, "null"]));
        }
    }
    for key in ["properties", "patternProperties"] {
        if let Some(Value::Object(children)) = map.get_mut(key) {
            children.values_mut().for_each(structural);
        }
    }
    for key in ["items", "additionalProperties", "not"] {
        if let Some(child) = map.get_mut(key) {
            structural(child);
        }
    }
    for key in ["allOf", "anyOf", "oneOf"] {
        if let Some(Value::Array(children)) = map.get_mut(key) {
            children.iter_mut().for_each(structural);
        }
    }
}

/// ObjectMeta as far as a manifest author writes it.
fn object_meta() -> Value {
    let dns_label = "^[a-z0-9]([-a-z0-9]*[a-z0-9])?$";
    let dns_subdomain = "^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$";
    json!({
        "type": "object",
        "required": ["name"],
        "additionalProperties": false,
        "properties": {
            "name": { "type": "string", "maxLength": 253, "pattern": dns_subdomain },
            "namespace": { "type": "string", "maxLength": 63, "pattern": dns_label },
            "labels": { "type": "object", "additionalProperties": { "type": "string" } },
            "annotations": { "type": "object", "additionalProperties": { "type": "string" } },
        },
    })
}
