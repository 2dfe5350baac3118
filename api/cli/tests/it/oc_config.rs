//! The real `oc` binary without a platform: where it connects and with which key (flag >
//! environment > config file > default), warnings about a config file others can read, a broken
//! config file named with its line, refusals of bad input before anything is sent, and shell
//! completions.

use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use serde_json::json;

use crate::oc_support::{oc_run, stderr_of, stdout_of, Reply, Silent, StubApi};

fn write_config(path: &Path, text: &str, mode: u32) {
    std::fs::write(path, text).expect("write config");
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).expect("chmod");
}

fn stub_listing_projects() -> StubApi {
    StubApi::start(|_| Reply::json(200, json!([])))
}

#[test]
fn the_url_and_key_come_from_the_flag_then_the_environment_then_the_config_file() {
    let dir = tempfile::tempdir().expect("tempdir");
    let config = dir.path().join("config.toml");
    let (from_file, from_env, from_flag) = (
        stub_listing_projects(),
        stub_listing_projects(),
        stub_listing_projects(),
    );
    write_config(
        &config,
        &format!(
            "api_url = \"{}\"\napi_key = \"osb_from_file\"\n",
            from_file.url
        ),
        0o600,
    );
    let config_env = ("OPENSANDBOX_CONFIG", config.to_str().expect("utf-8"));

    let listed = oc_run(&["project", "list"], &[config_env]);
    assert!(listed.status.success(), "{}", stderr_of(&listed));
    assert_eq!(stderr_of(&listed), "", "no warning for a 0600 file");
    let request = &from_file.requests()[0];
    assert_eq!(request.path, "/api/projects");
    assert_eq!(request.header("x-api-key"), Some("osb_from_file"));

    let listed = oc_run(
        &["project", "list"],
        &[
            config_env,
            ("OPENSANDBOX_API_URL", &from_env.url),
            ("OPENSANDBOX_API_KEY", "osb_from_env"),
        ],
    );
    assert!(listed.status.success(), "{}", stderr_of(&listed));
    assert_eq!(
        from_env.requests()[0].header("x-api-key"),
        Some("osb_from_env")
    );

    let listed = oc_run(
        &["--api-url", &from_flag.url, "project", "list"],
        &[config_env, ("OPENSANDBOX_API_URL", &from_env.url)],
    );
    assert!(listed.status.success(), "{}", stderr_of(&listed));
    assert_eq!(
        from_flag.requests()[0].header("x-api-key"),
        Some("osb_from_file"),
        "the key still comes from the file when only the URL is overridden"
    );
    assert_eq!(from_file.requests().len(), 1);
    assert_eq!(from_env.requests().len(), 1);
}

#[test]
fn xdg_config_home_locates_the_file() {
    let dir = tempfile::tempdir().expect("tempdir");
    let stub = stub_listing_projects();
    let folder = dir.path().join("opensandbox");
    std::fs::create_dir_all(&folder).expect("mkdir");
    write_config(
        &folder.join("config.toml"),
        &format!("api_url = \"{}\"\napi_key = \"osb_xdg\"\n", stub.url),
        0o600,
    );
    let mut command = crate::oc_support::oc_command(&["project", "list"], &[]);
    command
        .env_remove("OPENSANDBOX_CONFIG")
        .env("XDG_CONFIG_HOME", dir.path());
    let listed = command.output().expect("oc runs");
    assert!(listed.status.success(), "{}", stderr_of(&listed));
    assert_eq!(stub.requests()[0].header("x-api-key"), Some("osb_xdg"));
}

#[test]
fn a_config_file_others_can_read_is_used_with_a_warning_that_never_shows_the_key() {
    let dir = tempfile::tempdir().expect("tempdir");
    let config = dir.path().join("config.toml");
    let stub = stub_listing_projects();
    write_config(
        &config,
        &format!(
            "api_url = \"{}\"\napi_key = \"osb_readable_canary\"\n",
            stub.url
        ),
        0o644,
    );
    let listed = oc_run(
        &["project", "list"],
        &[("OPENSANDBOX_CONFIG", config.to_str().expect("utf-8"))],
    );
    assert!(listed.status.success(), "{}", stderr_of(&listed));
    let stderr = stderr_of(&listed);
    assert!(
        stderr.starts_with("warning: ") && stderr.contains("chmod 600") && stderr.contains("644"),
        "{stderr}"
    );
    assert!(!stderr.contains("osb_readable_canary"), "{stderr}");
    assert_eq!(
        stdout_of(&listed),
        "NAME  ID  EGRESSALLOWLIST  CPUCOUNT  MEMORYMB\n"
    );
}

#[test]
fn a_malformed_config_file_is_named_with_its_line_and_nothing_is_sent() {
    let dir = tempfile::tempdir().expect("tempdir");
    let config = dir.path().join("config.toml");
    let silent = Silent::start();
    write_config(
        &config,
        &format!(
            "api_url = \"{}\"\napi_key = osb_unquoted_canary\n",
            silent.url
        ),
        0o600,
    );
    let listed = oc_run(
        &["project", "list"],
        &[("OPENSANDBOX_CONFIG", config.to_str().expect("utf-8"))],
    );
    assert_eq!(listed.status.code(), Some(2), "{}", stderr_of(&listed));
    let stderr = stderr_of(&listed);
    assert!(
        stderr.contains(&format!("{}:2:", config.display())),
        "names file and line: {stderr}"
    );
    assert!(!stderr.contains("osb_unquoted_canary"), "{stderr}");
    assert!(!silent.was_contacted());
}

#[test]
fn an_unreachable_api_names_the_url_and_where_it_came_from() {
    let dir = tempfile::tempdir().expect("tempdir");
    let config = dir.path().join("config.toml");
    write_config(
        &config,
        "api_url = \"http://127.0.0.1:9\"\napi_key = \"osb_k\"\n",
        0o600,
    );
    let listed = oc_run(
        &["sandbox", "list"],
        &[("OPENSANDBOX_CONFIG", config.to_str().expect("utf-8"))],
    );
    assert_eq!(listed.status.code(), Some(1));
    let stderr = stderr_of(&listed);
    assert!(
        stderr.contains("http://127.0.0.1:9") && stderr.contains(&config.display().to_string()),
        "{stderr}"
    );
    let listed = oc_run(
        &["--api-url", "http://127.0.0.1:10", "sandbox", "list"],
        &[("OPENSANDBOX_API_KEY", "osb_k")],
    );
    let stderr = stderr_of(&listed);
    assert!(
        stderr.contains("http://127.0.0.1:10") && stderr.contains("--api-url"),
        "{stderr}"
    );
}

#[test]
fn without_a_key_nothing_is_sent_and_the_error_says_how_to_get_one() {
    let silent = Silent::start();
    let listed = oc_run(
        &["sandbox", "list"],
        &[("OPENSANDBOX_API_URL", &silent.url)],
    );
    assert_eq!(listed.status.code(), Some(3));
    let stderr = stderr_of(&listed);
    assert!(
        stderr.contains("OPENSANDBOX_API_KEY") && stderr.contains("osbd up"),
        "{stderr}"
    );
    assert!(!silent.was_contacted());
}

#[test]
fn bad_env_pairs_and_missing_commands_are_refused_before_anything_is_sent() {
    let silent = Silent::start();
    let env = [
        ("OPENSANDBOX_API_URL", silent.url.as_str()),
        ("OPENSANDBOX_API_KEY", "osb_k"),
    ];
    let refusals: &[&[&str]] = &[
        &["create", "--project", "web", "--env", "NOEQUALS"],
        &["create", "--project", "web", "--env", "1BAD=hidden"],
        &["create", "--project", "web", "--env", "A=1", "--env", "A=2"],
        &["fork", "chk_1", "--env", "A-B=1"],
        &["exec", "sbx_1", "--env", "=x", "--", "true"],
        &[
            "exec", "sbx_1", "--env", "A=1", "--env", "A=1", "--", "true",
        ],
        &["exec", "sbx_1"],
        &["create", "--env", "A=1"],
        &["completions", "tcsh"],
    ];
    for args in refusals {
        let refused = oc_run(args, &env);
        assert_eq!(
            refused.status.code(),
            Some(2),
            "{args:?}: {}",
            stderr_of(&refused)
        );
        assert!(!stderr_of(&refused).is_empty(), "{args:?} explains itself");
    }
    let explained = stderr_of(&oc_run(refusals[1], &env));
    assert!(
        explained.contains("environment variable name"),
        "{explained}"
    );
    let explained = stderr_of(&oc_run(refusals[2], &env));
    assert!(explained.contains("--env A is given twice"), "{explained}");
    assert!(!silent.was_contacted());
}

#[test]
fn completions_are_printed_for_each_shell() {
    for (shell, marker) in [
        ("bash", "complete -F"),
        ("zsh", "#compdef oc"),
        ("fish", "complete -c oc"),
    ] {
        let printed = oc_run(&["completions", shell], &[]);
        assert!(printed.status.success(), "{shell}: {}", stderr_of(&printed));
        let script = stdout_of(&printed);
        assert!(script.contains(marker), "{shell}: {script}");
        for command in ["checkpoint", "snapshot", "events", "exec", "sandbox"] {
            assert!(script.contains(command), "{shell} completes {command}");
        }
    }
}
