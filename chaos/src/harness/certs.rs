//! Test certificates written to a directory as PEM files, as an operator's PKI would hand
//! them over: a CA, a broker certificate for `localhost` and `127.0.0.1`, a client
//! certificate, an expired client certificate, and a second, unrelated CA.

use rcgen::{
    BasicConstraints, Certificate, CertificateParams, DnType, IsCa, KeyPair, KeyUsagePurpose,
    SanType,
};
use std::net::{IpAddr, Ipv4Addr};
use std::path::{Path, PathBuf};

/// The PEM files of a test PKI.
#[derive(Debug, Clone)]
pub struct Pki {
    /// The CA that signed everything below.
    pub ca: PathBuf,
    /// The broker's certificate (`localhost`, `127.0.0.1`) and key.
    pub server_cert: PathBuf,
    /// See `server_cert`.
    pub server_key: PathBuf,
    /// A valid client certificate (CN `gw-01`) and key.
    pub client_cert: PathBuf,
    /// See `client_cert`.
    pub client_key: PathBuf,
    /// A client certificate of the same CA that expired in 2021, and its key.
    pub expired_cert: PathBuf,
    /// See `expired_cert`.
    pub expired_key: PathBuf,
    /// A CA that signed none of the above.
    pub other_ca: PathBuf,
}

fn ca(name: &str) -> (Certificate, KeyPair) {
    let mut p = CertificateParams::default();
    p.distinguished_name.push(DnType::CommonName, name);
    p.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    p.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    p.not_before = rcgen::date_time_ymd(2020, 1, 1);
    p.not_after = rcgen::date_time_ymd(2090, 1, 1);
    let key = KeyPair::generate().expect("CA key");
    (p.self_signed(&key).expect("CA certificate"), key)
}

fn leaf(
    cn: &str,
    sans: Vec<SanType>,
    valid: (i32, i32),
    issuer: &(Certificate, KeyPair),
) -> (Certificate, KeyPair) {
    let mut p = CertificateParams::default();
    p.distinguished_name.push(DnType::CommonName, cn);
    p.subject_alt_names = sans;
    p.not_before = rcgen::date_time_ymd(valid.0, 1, 1);
    p.not_after = rcgen::date_time_ymd(valid.1, 1, 1);
    let key = KeyPair::generate().expect("leaf key");
    let cert = p
        .signed_by(&key, &issuer.0, &issuer.1)
        .expect("leaf certificate");
    (cert, key)
}

impl Pki {
    /// Generates the PKI into `dir`.
    pub fn generate(dir: &Path) -> Pki {
        let root = ca("edgegw test CA");
        let other = ca("some other CA");
        let server = leaf(
            "localhost",
            vec![
                SanType::DnsName("localhost".try_into().expect("dns name")),
                SanType::IpAddress(IpAddr::V4(Ipv4Addr::LOCALHOST)),
            ],
            (2020, 2090),
            &root,
        );
        let client = leaf("gw-01", Vec::new(), (2020, 2090), &root);
        let expired = leaf("gw-01", Vec::new(), (2020, 2021), &root);
        let put = |name: &str, text: String| {
            let p = dir.join(name);
            std::fs::write(&p, text).expect("write PEM");
            p
        };
        Pki {
            ca: put("ca.pem", root.0.pem()),
            server_cert: put("server.pem", server.0.pem()),
            server_key: put("server.key", server.1.serialize_pem()),
            client_cert: put("client.pem", client.0.pem()),
            client_key: put("client.key", client.1.serialize_pem()),
            expired_cert: put("expired.pem", expired.0.pem()),
            expired_key: put("expired.key", expired.1.serialize_pem()),
            other_ca: put("other-ca.pem", other.0.pem()),
        }
    }
}
