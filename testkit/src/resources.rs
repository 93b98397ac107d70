//! Resource files for `--resources-path`: Dapr Component and wasilock Tenant YAML.

use std::path::Path;

/// Writes a component YAML file into a new temporary directory for `--resources-path`.
pub fn resources(files: &[(&str, &str)]) -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("a resources directory");
    for (name, yaml) in files {
        std::fs::write(dir.path().join(name), yaml).expect("write a component file");
    }
    dir
}

/// The path of a directory made by [`resources`], as the argument of `--resources-path`.
pub fn resources_path(dir: &tempfile::TempDir) -> &str {
    dir.path().to_str().expect("a UTF-8 temporary path")
}

/// A lock component YAML document.
pub fn component(name: &str, store_type: &str, metadata: &[(&str, &str)]) -> String {
    component_with_refs(name, store_type, metadata, &[])
}

/// A lock component YAML document whose metadata is `metadata` (name, value) and then
/// `refs` (name, the environment variable its `envRef` names).
pub fn component_with_refs(
    name: &str,
    store_type: &str,
    metadata: &[(&str, &str)],
    refs: &[(&str, &str)],
) -> String {
    let mut yaml = format!(
        "apiVersion: dapr.io/v1alpha1\nkind: Component\nmetadata:\n  name: {name}\nspec:\n  type: {store_type}\n  version: v1\n  metadata:\n"
    );
    for (key, value) in metadata {
        yaml.push_str(&format!("  - name: {key}\n    value: \"{value}\"\n"));
    }
    for (key, variable) in refs {
        yaml.push_str(&format!("  - name: {key}\n    envRef: {variable}\n"));
    }
    if metadata.is_empty() && refs.is_empty() {
        yaml = yaml.replace("  metadata:\n", "  metadata: []\n");
    }
    yaml
}

/// A Tenant YAML document: app id `name`, token `token`, an optional component file and
/// `limits` as a YAML flow mapping (`{}` for none).
pub fn tenant(name: &str, token: &str, component: Option<&Path>, limits: &str) -> String {
    let mut yaml = format!(
        "apiVersion: wasilock/v1alpha1\nkind: Tenant\nmetadata:\n  name: {name}\nspec:\n  apiToken:\n    value: \"{token}\"\n  limits: {limits}\n"
    );
    if let Some(component) = component {
        yaml.push_str(&format!("  component: \"{}\"\n", component.display()));
    }
    yaml
}

/// A lock component YAML document whose store only the app ids `scopes` see.
pub fn scoped_component(name: &str, store_type: &str, scopes: &[&str]) -> String {
    format!(
        "{}scopes: [{}]\n",
        component(name, store_type, &[]),
        scopes.join(", ")
    )
}
