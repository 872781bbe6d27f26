//! Broker URLs of the config (`mqtt://host[:port]`).

/// A broker address from `mqtt://host:port`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BrokerUrl {
    /// Host name or IP.
    pub host: String,
    /// TCP port (1883 when omitted).
    pub port: u16,
}

/// Parses `mqtt://host[:port]` (also `tcp://`); TLS schemes are refused with a clear message.
pub fn parse_url(url: &str) -> Result<BrokerUrl, String> {
    let rest = url
        .strip_prefix("mqtt://")
        .or_else(|| url.strip_prefix("tcp://"))
        .ok_or_else(|| {
            if url.starts_with("mqtts://") || url.starts_with("ssl://") {
                "TLS broker URLs are not supported yet; use mqtt://host:port".to_string()
            } else {
                format!("{url:?} must look like mqtt://host:port")
            }
        })?;
    let rest = rest.trim_end_matches('/');
    let (host, port) = match rest.rsplit_once(':') {
        Some((h, p)) if !h.ends_with(']') || h.starts_with('[') => (
            h,
            p.parse::<u16>()
                .map_err(|_| format!("{url:?}: port {p:?} is not a number in 1..65535"))?,
        ),
        _ => (rest, 1883),
    };
    let host = host.trim_start_matches('[').trim_end_matches(']');
    if host.is_empty() || port == 0 {
        return Err(format!("{url:?} needs a host and a non-zero port"));
    }
    Ok(BrokerUrl {
        host: host.to_string(),
        port,
    })
}
