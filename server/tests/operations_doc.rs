//! The operator's documents cannot drift from the configuration struct: every setting of
//! [`Config`] (nested ones as `limits.x`) has a row in docs/OPERATIONS.md's settings table with
//! its real default, the table lists nothing that does not exist, and both shipped config files
//! (chat-server.example.toml and the .deb's /etc/chat-server/chat-server.toml) load and mention
//! every top-level setting.

use chat_server::Config;
use serde_json::Value;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

fn repo(path: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..").join(path)
}

/// Every setting with its default, rendered as the docs write it (`"text"`, `10`, `[]`, unset).
fn settings() -> BTreeMap<String, String> {
    let Value::Object(top) = serde_json::to_value(Config::default()).expect("serialize") else {
        panic!("Config is not a struct");
    };
    let mut out = BTreeMap::new();
    for (key, value) in top {
        match value {
            Value::Object(nested) => {
                for (k, v) in nested {
                    out.insert(format!("{key}.{k}"), render(&v));
                }
            }
            v => {
                out.insert(key, render(&v));
            }
        }
    }
    out
}

fn render(v: &Value) -> String {
    match v {
        Value::Null => "unset".into(),
        Value::String(s) => format!("\"{s}\""),
        other => other.to_string(),
    }
}

/// Rows of the table under "## Settings": `` | `key` | `default` | meaning | ``.
fn documented() -> BTreeMap<String, String> {
    let doc = std::fs::read_to_string(repo("docs/OPERATIONS.md")).expect("docs/OPERATIONS.md");
    let section = doc
        .split("\n## Settings")
        .nth(1)
        .expect("a '## Settings' section")
        .split("\n## ")
        .next()
        .unwrap_or_default();
    section
        .lines()
        .filter(|l| l.starts_with("| `"))
        .map(|l| {
            let cells: Vec<&str> = l.split('|').map(str::trim).collect();
            let key = cells[1].trim_matches('`').to_owned();
            let default = cells[2].trim_matches('`').to_owned();
            (key, default)
        })
        .collect()
}

#[test]
fn every_setting_is_documented_with_its_default() {
    let actual = settings();
    let documented = documented();
    let missing: Vec<_> = actual
        .keys()
        .filter(|k| !documented.contains_key(*k))
        .collect();
    assert!(
        missing.is_empty(),
        "settings missing from docs/OPERATIONS.md: {missing:?}"
    );
    let unknown: Vec<_> = documented
        .keys()
        .filter(|k| !actual.contains_key(*k))
        .collect();
    assert!(
        unknown.is_empty(),
        "docs/OPERATIONS.md documents settings that do not exist: {unknown:?}"
    );
    for (key, default) in &actual {
        assert_eq!(
            &documented[key], default,
            "docs/OPERATIONS.md gives the wrong default for `{key}`"
        );
    }
}

#[test]
fn shipped_config_files_load_and_mention_every_setting() {
    let tops: Vec<String> = settings()
        .keys()
        .map(|k| k.split('.').next().unwrap_or_default().to_owned())
        .collect();
    for file in ["chat-server.example.toml", "deploy/debian/chat-server.toml"] {
        let path = repo(file);
        let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{file}: {e}"));
        Config::load(Some(&path)).unwrap_or_else(|e| panic!("{file} does not load: {e}"));
        for key in &tops {
            let mentioned = text.lines().any(|l| {
                let l = l.trim_start_matches(['#', ' ']);
                l.starts_with(&format!("{key} =")) || l.starts_with(&format!("[{key}]"))
            });
            assert!(mentioned, "{file} does not mention `{key}`");
        }
    }
}
