//! Keeps the container recipe in step with the binary and the build scripts (CI has no Docker
//! daemon to build the image or run compose.yaml): every `consistentid` command in compose.yaml
//! parses with the binary's own options and passes `serve`'s checks with the environment the
//! file gives it, and the Dockerfile's tool versions are those of scripts/install-tools.sh and
//! Cargo.toml.

use std::collections::HashMap;
use std::path::PathBuf;

use clap::Parser;

use crate::cli::{Cli, Command};

fn read(name: &str) -> String {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("..")
        .join(name);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// `key: value` lines under `environment:` blocks, `${VAR:-default}` resolved to the default.
fn environment(compose: &str) -> HashMap<String, String> {
    let mut env = HashMap::new();
    let mut inside: Option<usize> = None;
    for line in compose.lines() {
        let indent = line.len() - line.trim_start().len();
        let text = line.trim();
        if text == "environment:" {
            inside = Some(indent);
            continue;
        }
        match inside {
            Some(at) if indent > at && !text.is_empty() => {
                if let Some((k, v)) = text.split_once(": ") {
                    let v = match v.split_once(":-") {
                        Some((_, d)) if v.starts_with("${") => d.trim_end_matches('}'),
                        _ => v,
                    };
                    env.insert(k.to_string(), v.to_string());
                }
            }
            _ => inside = None,
        }
    }
    env
}

/// The flow-style `command: [...]` lists (JSON arrays of strings).
fn commands(compose: &str) -> Vec<Vec<String>> {
    compose
        .lines()
        .filter_map(|l| l.trim().strip_prefix("command: "))
        .map(|list| serde_json::from_str(list).unwrap_or_else(|e| panic!("command {list}: {e}")))
        .collect()
}

#[test]
fn compose_commands_are_valid_for_this_binary() {
    let compose = read("compose.yaml");
    let env = environment(&compose);
    assert!(env.contains_key("CONSISTENTID_DATABASE_URL"));
    let ours: Vec<Vec<String>> = commands(&compose)
        .into_iter()
        .filter(|c| ["serve", "migrate", "fetch"].contains(&c[0].as_str()))
        .collect();
    let mut roles = Vec::new();
    for args in &ours {
        // What clap would read from the environment, as the flags it stands for.
        let mut full = vec!["consistentid".to_string()];
        full.extend(args.iter().cloned());
        let from_env: &[(&str, &str)] = match args[0].as_str() {
            "serve" => &[
                ("CONSISTENTID_DATABASE_URL", "--database-url"),
                ("CONSISTENTID_OBJECT_STORE", "--object-store"),
                ("CONSISTENTID_LOG_FORMAT", "--log-format"),
            ],
            "migrate" => &[("CONSISTENTID_DATABASE_URL", "--database-url")],
            _ => &[],
        };
        for (var, flag) in from_env {
            if let Some(value) = env.get(*var) {
                full.extend([flag.to_string(), value.clone()]);
            }
        }
        let cli = Cli::try_parse_from(&full).unwrap_or_else(|e| panic!("{args:?}: {e}"));
        if let Command::Serve(serve) = cli.command {
            serve.check().unwrap_or_else(|e| panic!("{args:?}: {e:#}"));
            roles.push(serve.role);
        }
    }
    use crate::server::Role;
    let count = |r| roles.iter().filter(|&&x| x == r).count();
    assert_eq!((count(Role::Api), count(Role::Worker)), (2, 2), "{roles:?}");
    assert!(ours.iter().any(|c| c[0] == "migrate"));
    let url = env["CONSISTENTID_OBJECT_STORE"].clone();
    crate::server::store::Blobs::bucket(&url).unwrap_or_else(|e| panic!("{url}: {e:#}"));
}

/// `NAME=value` (shell) or `ARG NAME=value` (Dockerfile) → value.
fn assignment(text: &str, name: &str) -> String {
    text.lines()
        .map(|l| l.trim().trim_start_matches("ARG "))
        .find_map(|l| l.strip_prefix(&format!("{name}=")))
        .unwrap_or_else(|| panic!("no {name}="))
        .to_string()
}

#[test]
fn the_dockerfile_builds_with_the_scripts_tool_versions() {
    let docker = read("Dockerfile");
    let tools = read("scripts/install-tools.sh");
    for name in ["TRUNK_VERSION", "WASM_BINDGEN_VERSION"] {
        assert_eq!(
            assignment(&docker, name),
            assignment(&tools, name),
            "{name}"
        );
    }
    let binaryen = assignment(&docker, "BINARYEN_VERSION");
    assert!(
        tools.contains(&format!("binaryen@{binaryen}")),
        "binaryen {binaryen}"
    );
    let cargo = read("Cargo.toml");
    let rust = assignment(&cargo.replace(" = ", "="), "rust-version");
    let rust = rust.trim_matches('"');
    assert!(
        docker.contains(&format!("rust:{rust}-")) && docker.contains(&format!("toolchain {rust}")),
        "the Dockerfile's Rust is not {rust}"
    );
    for path in [
        "scripts/build-web.sh",
        "index.html",
        "Trunk.toml",
        "Cargo.lock",
    ] {
        assert!(
            PathBuf::from(env!("CARGO_MANIFEST_DIR"))
                .join("..")
                .join(path)
                .is_file(),
            "{path}"
        );
    }
    assert!(read("scripts/build-web.sh").contains("SKIP_TOOLS"));
}
