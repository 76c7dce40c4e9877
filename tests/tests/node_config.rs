//! `tern node --config FILE`: a real node configured by a TOML file (the harness adds only `--listen` and
//! `--data-dir`), and the precedence and errors of the file as the binary applies them. The binary is
//! `target/debug/tern`.

use std::path::Path;
use std::process::Command;

use serde_json::Value;
use tern_tests::cluster::{CONVERGE_CAP, Ca, Node, TOKEN, plan};
use tern_tests::{TernProcess, eventually, tern_binary};

/// `value` as a TOML basic string (JSON's escapes are TOML's).
fn quoted(value: &str) -> String {
    Value::from(value).to_string()
}

fn path_str(path: &Path) -> &str {
    path.to_str().expect("a UTF-8 temporary path")
}

#[tokio::test]
async fn a_node_runs_from_a_config_file() {
    let (ca, work) = (Ca::new(), tempfile::tempdir().unwrap());
    let plan = plan(&[("cfg-1", "ord")]).remove(0);
    // `--tls-ca PATH --tls-cert PATH --tls-key PATH` become `tls-ca = "PATH"` and so on.
    let tls = ca.tls_args(&plan.name);
    let tls: Vec<String> =
        tls.chunks(2).map(|pair| format!("{} = {}", pair[0].trim_start_matches("--"), quoted(&pair[1]))).collect();
    let config = format!(
        "region = \"ord\"\nzone = \"ord-b\"\nquic-listen = {quic}\nadmin-token = {token}\nprofile = \"lan\"\n\
         join = []\nvoters = [{voter}]\nfsync = true\nmax-open-databases = 64\n{tls}\n",
        quic = quoted(&plan.quic),
        token = quoted(TOKEN),
        voter = quoted(&format!("{}@{}", plan.name, plan.quic)),
        tls = tls.join("\n"),
    );
    let path = work.path().join("node.toml");
    std::fs::write(&path, config).unwrap();

    let process = TernProcess::start_node(&tern_binary(), &work.path().join("data"), &["--config", path_str(&path)]);
    let node = Node { name: plan.name.clone(), region: plan.region.clone(), quic: plan.quic.clone(), process };
    let members = eventually("the node lists itself", CONVERGE_CAP, || node.members()).await;
    let own = members.iter().find(|m| m["id"] == "cfg-1").unwrap_or_else(|| panic!("no cfg-1 in {members:?}"));
    assert_eq!((own["region"].as_str(), own["zone"].as_str()), (Some("ord"), Some("ord-b")), "{own}");
    assert_eq!((own["local"].as_bool(), own["quicAddr"].as_str()), (Some(true), Some(plan.quic.as_str())), "{own}");
}

/// Runs `tern node ARGS` with `env`, expecting it to fail as a usage error; returns its stderr.
fn usage_error(args: &[&str], env: &[(&str, &str)]) -> String {
    let output = Command::new(tern_binary())
        .arg("node")
        .args(args)
        .env_remove("TERN_LISTEN")
        .env_remove("TERN_CONFIG")
        .envs(env.iter().copied())
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
    assert_eq!(output.status.code(), Some(2), "{stderr}");
    stderr
}

#[test]
fn the_command_line_and_the_environment_win_over_the_file_and_bad_files_are_usage_errors() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("node.toml");
    let file = path_str(&path);
    std::fs::write(&path, "listen = \"not-an-address\"\n").unwrap();
    // The file's listen address is invalid: it is used (and refused) unless the command line or the environment
    // gives one, and then the node stops at the next problem: no --region.
    let from_file = usage_error(&["--config", file], &[]);
    assert!(from_file.contains("not-an-address") && from_file.contains("config file"), "{from_file}");
    let flag = usage_error(&["--config", file, "--listen", "127.0.0.1:1"], &[]);
    assert!(!flag.contains("not-an-address") && flag.contains("--region"), "{flag}");
    let env = usage_error(&[], &[("TERN_CONFIG", file), ("TERN_LISTEN", "127.0.0.1:1")]);
    assert!(!env.contains("not-an-address") && env.contains("--region"), "{env}");

    std::fs::write(&path, "region = \"iad\"\nvoters = { id = \"iad-1\" }\n").unwrap();
    let table = usage_error(&["--config", file], &[]);
    assert!(table.contains("`voters` in the config file") && table.contains(file), "{table}");
    std::fs::write(&path, "region = \"iad\"\nseeds = [\"10.0.0.1:7420\"]\n").unwrap();
    assert!(usage_error(&["--config", file], &[]).contains("unknown key `seeds`"));
    let missing = dir.path().join("missing.toml");
    let unreadable = usage_error(&["--config", path_str(&missing)], &[]);
    assert!(unreadable.contains("cannot read the config file") && unreadable.contains(path_str(&missing)));
}
