#![allow(clippy::unwrap_used)] // a failure here should stop the test loudly.
use super::*;

fn keys<'a>(url: &'a str, files: &'a [PathBuf; 4], username: &'a str) -> ClientKeys<'a> {
    ClientKeys {
        section: "uplink",
        url,
        ca_file: &files[0],
        cert_file: &files[1],
        key_file: &files[2],
        username,
        password_file: &files[3],
        alpn: &[],
    }
}

/// A CA certificate and a client certificate and key signed by it, as PEM files in `dir`.
fn pki(dir: &Path) -> (PathBuf, PathBuf, PathBuf) {
    use rcgen::{BasicConstraints, CertificateParams, IsCa, KeyPair};
    let mut ca = CertificateParams::default();
    ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    let ca_key = KeyPair::generate().unwrap();
    let ca_cert = ca.self_signed(&ca_key).unwrap();
    let mut leaf = CertificateParams::default();
    leaf.not_after = rcgen::date_time_ymd(2031, 3, 4);
    let leaf_key = KeyPair::generate().unwrap();
    let leaf_cert = leaf.signed_by(&leaf_key, &ca_cert, &ca_key).unwrap();
    let put = |name: &str, text: String| {
        let p = dir.join(name);
        std::fs::write(&p, text).unwrap();
        p
    };
    (
        put("ca.pem", ca_cert.pem()),
        put("client.pem", leaf_cert.pem()),
        put("client.key", leaf_key.serialize_pem()),
    )
}

#[test]
fn plaintext_links_refuse_tls_files_and_need_no_files() {
    let none = [
        PathBuf::new(),
        PathBuf::new(),
        PathBuf::new(),
        PathBuf::new(),
    ];
    let link = keys("mqtt://127.0.0.1:1883", &none, "").load().unwrap();
    assert!(link.tls.is_none() && link.login.is_none());
    let stray = [
        PathBuf::from("/etc/ca.pem"),
        PathBuf::new(),
        PathBuf::new(),
        PathBuf::new(),
    ];
    let e = keys("mqtt://broker:1883", &stray, "").load().unwrap_err();
    assert_eq!(e.key, "uplink.ca_file");
    assert!(e.reason.contains("mqtts://"), "{e}");
    let e = keys("https://broker", &none, "").load().unwrap_err();
    assert_eq!(e.key, "uplink.url");
}

#[test]
fn tls_files_are_read_at_load_and_a_bad_one_is_named() {
    let dir = tempfile::tempdir().unwrap();
    let (ca, cert, key) = pki(dir.path());
    let junk = dir.path().join("junk.pem");
    std::fs::write(&junk, "-----BEGIN CERTIFICATE-----\nnot base64\n").unwrap();
    let missing = dir.path().join("missing.pem");
    let url = "mqtts://localhost:8883";
    let cases: [([PathBuf; 4], &str, &str); 5] = [
        (
            [
                missing.clone(),
                PathBuf::new(),
                PathBuf::new(),
                PathBuf::new(),
            ],
            "uplink.ca_file",
            "cannot read",
        ),
        (
            [junk.clone(), PathBuf::new(), PathBuf::new(), PathBuf::new()],
            "uplink.ca_file",
            "junk.pem",
        ),
        (
            [ca.clone(), cert.clone(), PathBuf::new(), PathBuf::new()],
            "uplink.key_file",
            "is needed",
        ),
        (
            [ca.clone(), cert.clone(), ca.clone(), PathBuf::new()],
            "uplink.key_file",
            "no private key",
        ),
        (
            [ca.clone(), missing, key.clone(), PathBuf::new()],
            "uplink.cert_file",
            "cannot read",
        ),
    ];
    for (files, key_name, why) in &cases {
        let e = keys(url, files, "").load().unwrap_err();
        assert_eq!(&e.key, key_name, "{e}");
        assert!(e.reason.contains(why), "{e}");
    }
    let files = [ca.clone(), cert.clone(), key, PathBuf::new()];
    let link = keys(url, &files, "").load().unwrap();
    let tls = link.tls.unwrap();
    assert_eq!(tls.roots, ca.display().to_string());
    let client = tls.client_cert.unwrap();
    assert_eq!(client.path, cert);
    // 2031-03-04T00:00:00Z, read from the certificate itself.
    assert_eq!(client.not_after, Some(1_930_348_800));
    assert_eq!(link.url.port, 8883);
}

#[test]
fn the_password_is_read_once_trimmed_of_its_line_break_and_never_shown() {
    let dir = tempfile::tempdir().unwrap();
    let pw = dir.path().join("password");
    std::fs::write(&pw, "s3cret pass\n").unwrap();
    let files = [PathBuf::new(), PathBuf::new(), PathBuf::new(), pw.clone()];
    let link = keys("mqtt://127.0.0.1:1883", &files, "gw-01")
        .load()
        .unwrap();
    let login = link.login.clone().unwrap();
    assert_eq!(
        (login.username.as_str(), login.password()),
        ("gw-01", "s3cret pass")
    );
    let shown = format!("{link:?}");
    assert!(
        !shown.contains("s3cret") && shown.contains("<redacted>"),
        "{shown}"
    );
    // The file is not read again: changing it changes nothing for this link.
    std::fs::write(&pw, "other\n").unwrap();
    assert_eq!(link.login.unwrap().password(), "s3cret pass");

    let e = keys("mqtt://127.0.0.1:1883", &files, "")
        .load()
        .unwrap_err();
    assert_eq!(e.key, "uplink.username");
    let gone = [
        PathBuf::new(),
        PathBuf::new(),
        PathBuf::new(),
        dir.path().join("nope"),
    ];
    let e = keys("mqtt://127.0.0.1:1883", &gone, "gw")
        .load()
        .unwrap_err();
    assert_eq!(e.key, "uplink.password_file");
    assert!(e.reason.contains("cannot read"), "{e}");
}
