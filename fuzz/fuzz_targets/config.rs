//! Config files as `check-config` and `run` read them: TOML, then the typed config (with the
//! key path of any error), then validation. Nothing may panic; an error always names a key.
#![no_main]

use edgegw_actors::config::GatewayConfig;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let Ok(table) = text.parse::<toml::Table>() else {
        return;
    };
    let cfg: Result<GatewayConfig, _> = serde_path_to_error::deserialize(toml::Value::Table(table));
    if let Ok(cfg) = cfg {
        if let Err(e) = cfg.validate() {
            assert!(!e.key.is_empty(), "an error without a key: {e}");
        }
    }
});
