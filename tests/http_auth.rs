//! The operations endpoint's bearer token, through the real binary: with `http.token_file`
//! set, `/status` and `/metrics` answer only the token; `/healthz` and `/readyz` stay open;
//! beyond loopback the token is required, and a missing or unreadable file is refused naming
//! the key (`check-config` and `run`, exit 2).
#![allow(clippy::unwrap_used)] // tests and benches may unwrap: a failure here should stop the run loudly.

mod common;

use common::*;

const TOKEN: &str = "3f1c9a7e5b2d4c6a8e0f1a2b3c4d5e6f";

#[test]
fn status_and_metrics_answer_only_the_token() {
    let dir = tempfile::tempdir().unwrap();
    let token = write(dir.path(), "http.token", &format!("{TOKEN}\n"));
    let port = free_port();
    let gw = Gw::start_with_http_in(
        dir.path(),
        &format!(
            "[broker]\nembedded = true\nbind = \"127.0.0.1:{port}\"\n[ingest]\nurl = \"mqtt://127.0.0.1:{port}\"\n\
             [uplink]\nurl = \"mqtt://127.0.0.1:{port}\"\n"
        ),
        &format!("token_file = \"{}\"", token.display()),
    );
    for path in ["/status", "/metrics"] {
        assert_eq!(gw.get(path).0, 401, "{path} without a token");
        assert_eq!(
            gw.get_with_token(path, "3f1c9a7e5b2d4c6a8e0f1a2b3c4d5e60")
                .0,
            401,
            "{path} with a wrong token"
        );
        assert_eq!(
            gw.get_with_token(path, &TOKEN[..16]).0,
            401,
            "{path}, a prefix"
        );
        let (code, body) = gw.get_with_token(path, TOKEN);
        assert_eq!(code, 200, "{path} with the token: {body}");
    }
    let (_, metrics) = gw.get_with_token("/metrics", TOKEN);
    assert!(metrics.contains("edgegw_samples_ingested_total"));
    let (_, status) = gw.get_with_token("/status", TOKEN);
    let status: serde_json::Value = serde_json::from_str(&status).unwrap();
    assert!(status["mode"].is_object(), "{status}");
    assert_eq!(gw.get("/healthz").0, 200);
    assert_eq!(gw.get("/readyz").0, 200);
    // The token is never written to the log.
    assert!(!gw.log().contains(TOKEN));
    assert_eq!(gw.stop(), Some(0));
}

#[test]
fn beyond_loopback_the_token_is_required_and_its_file_must_be_readable() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("no-such-token");
    let short = write(dir.path(), "short.token", "abc\n");
    let cases = [
        (
            "[http]\nbind = \"0.0.0.0:9464\"\n".to_string(),
            "not a loopback",
        ),
        (
            format!(
                "[http]\nbind = \"0.0.0.0:9464\"\ntoken_file = \"{}\"\n",
                missing.display()
            ),
            "cannot read",
        ),
        (
            format!("[http]\ntoken_file = \"{}\"\n", short.display()),
            "shorter",
        ),
    ];
    for (i, (toml, why)) in cases.iter().enumerate() {
        let p = write(dir.path(), &format!("bad{i}.toml"), toml);
        for args in [
            vec!["check-config".to_string(), p.display().to_string()],
            vec!["run".into(), "--config".into(), p.display().to_string()],
        ] {
            let out = bin_command().args(&args).output().unwrap();
            let err = String::from_utf8_lossy(&out.stderr);
            assert_eq!(out.status.code(), Some(2), "{args:?}: {err}");
            assert!(err.contains("http.token_file"), "{args:?}: {err}");
            assert!(err.contains(why), "{args:?}: {err}");
        }
    }
    let token = write(dir.path(), "good.token", TOKEN);
    let good = write(
        dir.path(),
        "good.toml",
        &format!(
            "[http]\nbind = \"0.0.0.0:9464\"\ntoken_file = \"{}\"\n",
            token.display()
        ),
    );
    let out = bin_command()
        .arg("check-config")
        .arg(&good)
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(!String::from_utf8_lossy(&out.stdout).contains(TOKEN));
}
