//! Broker URLs of the config: `mqtt://host[:port]` in the clear, `mqtts://host[:port]` over TLS.

/// A broker address from `mqtt://host:port` or `mqtts://host:port`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BrokerUrl {
    /// Host name or IP (also the name the broker's certificate must carry, over TLS).
    pub host: String,
    /// TCP port (1883 when omitted, 8883 over TLS).
    pub port: u16,
    /// `mqtts://` (or `ssl://`): TLS.
    pub tls: bool,
}

/// Parses `mqtt://host[:port]` (also `tcp://`) and `mqtts://host[:port]` (also `ssl://`).
pub fn parse_url(url: &str) -> Result<BrokerUrl, String> {
    let schemes = [
        ("mqtt://", false),
        ("tcp://", false),
        ("mqtts://", true),
        ("ssl://", true),
    ];
    let (rest, tls) = schemes
        .iter()
        .find_map(|(s, tls)| url.strip_prefix(s).map(|r| (r, *tls)))
        .ok_or_else(|| format!("{url:?} must look like mqtt://host:port or mqtts://host:port"))?;
    let rest = rest.trim_end_matches('/');
    let default_port = if tls { 8883 } else { 1883 };
    let (host, port) = match rest.rsplit_once(':') {
        Some((h, p)) if !h.ends_with(']') || h.starts_with('[') => (
            h,
            p.parse::<u16>()
                .map_err(|_| format!("{url:?}: port {p:?} is not a number in 1..65535"))?,
        ),
        _ => (rest, default_port),
    };
    let host = host.trim_start_matches('[').trim_end_matches(']');
    if host.is_empty() || port == 0 {
        return Err(format!("{url:?} needs a host and a non-zero port"));
    }
    Ok(BrokerUrl {
        host: host.to_string(),
        port,
        tls,
    })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)] // a failure here should stop the test loudly.
    use super::*;

    #[test]
    fn urls() {
        assert_eq!(
            parse_url("mqtt://127.0.0.1:1884").unwrap(),
            BrokerUrl {
                host: "127.0.0.1".into(),
                port: 1884,
                tls: false,
            }
        );
        assert_eq!(parse_url("tcp://broker.local").unwrap().port, 1883);
        assert_eq!(parse_url("mqtt://[::1]:1885").unwrap().host, "::1");
        let tls = parse_url("mqtts://a1b2.iot.eu-west-1.amazonaws.com").unwrap();
        assert!(tls.tls && tls.port == 8883, "{tls:?}");
        assert_eq!(parse_url("ssl://x:443").unwrap().port, 443);
        assert!(!parse_url("mqtt://x").unwrap().tls);
        assert!(parse_url("http://x:1").is_err());
        assert!(parse_url("mqtt://x:port").is_err());
        assert!(parse_url("mqtt://:1883").is_err());
        assert!(parse_url("mqtts://:8883").is_err());
    }
}
