//! Config assembly: the embedded defaults (`config/gateway.toml`), then a file, then
//! `EDGEGW_<SECTION>__<KEY>` environment overrides; then validation.
//!
//! Design constraints: every error names the dotted key at fault (and the environment
//! variable when one set it), so `edgegw check-config` and `edgegw run` can exit 2 with a
//! message an operator can act on.

use edgegw_actors::{ConfigError, GatewayConfig};
use std::collections::HashMap;
use std::path::Path;
use toml::Value;

/// The built-in defaults.
pub const DEFAULT_TOML: &str = include_str!("../config/gateway.toml");

/// Environment variable prefix for overrides.
pub const ENV_PREFIX: &str = "EDGEGW_";

/// [`load`] for a command that only reads the config (`eval`, `train`, `store`): the
/// process environment's overrides; an invalid config is printed and becomes exit 2.
pub fn load_for_command(file: Option<&Path>) -> Result<GatewayConfig, std::process::ExitCode> {
    load(file, std::env::vars()).map_err(|e| {
        eprintln!("error: invalid config: {e}");
        std::process::ExitCode::from(2)
    })
}

/// Loads `file` (or only the defaults) with overrides from `env`, and validates.
pub fn load(
    file: Option<&Path>,
    env: impl IntoIterator<Item = (String, String)>,
) -> Result<GatewayConfig, ConfigError> {
    let mut merged = parse(DEFAULT_TOML, "config/gateway.toml")?;
    if let Some(path) = file {
        let text = std::fs::read_to_string(path).map_err(|e| {
            ConfigError::new("<file>", format!("cannot read {}: {e}", path.display()))
        })?;
        let user = parse(&text, &path.display().to_string())?;
        merge(&mut merged, user);
    }
    let sources = apply_env(&mut merged, env)?;
    let cfg: Result<GatewayConfig, ConfigError> = serde_path_to_error::deserialize(merged)
        .map_err(|e| ConfigError::new(e.path().to_string(), e.inner().to_string()));
    let cfg = cfg.and_then(|c| c.validate().map(|()| c));
    cfg.map_err(|mut e| {
        if let Some(var) = sources.get(&e.key) {
            e.reason = format!("{} (set by {var})", e.reason);
        }
        e
    })
}

fn parse(text: &str, origin: &str) -> Result<Value, ConfigError> {
    text.parse::<toml::Table>()
        .map(Value::Table)
        .map_err(|e| ConfigError::new("<syntax>", format!("{origin}: {}", e.to_string().trim())))
}

fn merge(base: &mut Value, over: Value) {
    match (base, over) {
        (Value::Table(b), Value::Table(o)) => {
            for (k, v) in o {
                match b.get_mut(&k) {
                    Some(existing) if existing.is_table() && v.is_table() => merge(existing, v),
                    _ => {
                        b.insert(k, v);
                    }
                }
            }
        }
        (b, o) => *b = o,
    }
}

/// Applies `EDGEGW_SECTION__KEY=value` overrides; returns key → variable for error messages.
fn apply_env(
    cfg: &mut Value,
    env: impl IntoIterator<Item = (String, String)>,
) -> Result<HashMap<String, String>, ConfigError> {
    let mut sources = HashMap::new();
    for (var, raw) in env {
        let Some(rest) = var.strip_prefix(ENV_PREFIX) else {
            continue;
        };
        let Some((section, key)) = rest.split_once("__") else {
            return Err(ConfigError::new(
                var.clone(),
                "must look like EDGEGW_<SECTION>__<KEY>",
            ));
        };
        let (section, key) = (section.to_ascii_lowercase(), key.to_ascii_lowercase());
        // Deeper keys (`EDGEGW_FEEDBACK__KINDS__LABEL__BURST`) name nested tables.
        let mut path: Vec<&str> = key.split("__").collect();
        let key = path.pop().unwrap_or_default().to_string();
        // A TOML literal when it parses as one (numbers, booleans, arrays), else a string.
        let value = format!("v = {raw}")
            .parse::<toml::Table>()
            .ok()
            .and_then(|mut t| t.remove("v"))
            .unwrap_or_else(|| Value::String(raw.clone()));
        let Some(root) = cfg.as_table_mut() else {
            continue;
        };
        let table = root
            .entry(section.clone())
            .or_insert_with(|| Value::Table(Default::default()));
        let Some(mut table) = table.as_table_mut() else {
            return Err(ConfigError::new(
                section,
                format!("is not a section (set by {var})"),
            ));
        };
        let mut dotted = section.clone();
        for part in path {
            // Environment variable names cannot hold '-': `RAW_REQUEST` finds `raw-request`.
            let dashed = part.replace('_', "-");
            let part = if !table.contains_key(part) && table.contains_key(&dashed) {
                dashed
            } else {
                part.to_string()
            };
            dotted = format!("{dotted}.{part}");
            let next = table
                .entry(part.as_str())
                .or_insert_with(|| Value::Table(Default::default()));
            let Some(t) = next.as_table_mut() else {
                return Err(ConfigError::new(
                    dotted,
                    format!("is not a table (set by {var})"),
                ));
            };
            table = t;
        }
        table.insert(key.clone(), value);
        sources.insert(format!("{dotted}.{key}"), var);
    }
    Ok(sources)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn load_str(toml: &str, env: &[(&str, &str)]) -> Result<GatewayConfig, ConfigError> {
        let mut f = tempfile::NamedTempFile::new().unwrap();
        f.write_all(toml.as_bytes()).unwrap();
        load(
            Some(f.path()),
            env.iter().map(|(k, v)| (k.to_string(), v.to_string())),
        )
    }

    #[test]
    fn embedded_defaults_equal_code_defaults() {
        let from_file = load(None, Vec::new()).unwrap();
        let a = toml::Value::try_from(&from_file).unwrap();
        let b = toml::Value::try_from(GatewayConfig::default()).unwrap();
        assert_eq!(a, b, "config/gateway.toml and the code defaults differ");
    }

    #[test]
    fn every_example_loads() {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("config/examples");
        let mut n = 0;
        for e in std::fs::read_dir(dir).unwrap() {
            let p = e.unwrap().path();
            load(Some(&p), Vec::new()).unwrap_or_else(|e| panic!("{}: {e}", p.display()));
            n += 1;
        }
        assert!(n > 0);
    }

    #[test]
    fn errors_name_the_key() {
        type Case<'a> = (&'a str, &'a [(&'a str, &'a str)], &'a str);
        let cases: &[Case] = &[
            ("[sensors]\nwindow = 0\n", &[], "sensors.window"),
            ("[sensors]\nhop = 100\n", &[], "sensors.hop"),
            ("[inference]\nworkers = 0\n", &[], "inference.workers"),
            ("[sensors]\nwindow = \"big\"\n", &[], "sensors.window"),
            ("[sensors]\nwindw = 3\n", &[], "sensors.windw"),
            ("[nonsense]\nx = 1\n", &[], "nonsense"),
            ("[summary]\nperiod = 60\n", &[], "summary.period"),
            ("[uplink]\nurl = \"http://x\"\n", &[], "uplink.url"),
            (
                "[telemetry]\notlp_endpoint = \"127.0.0.1:4317\"\n",
                &[],
                "telemetry.otlp_endpoint",
            ),
            (
                "[telemetry]\notlp_endpoint = \"http://\"\n",
                &[],
                "telemetry.otlp_endpoint",
            ),
            (
                "[telemetry]\nsample_ratio = 1.5\n",
                &[],
                "telemetry.sample_ratio",
            ),
            ("[telemetry]\nlog_burst = 0\n", &[], "telemetry.log_burst"),
            (
                "[telemetry]\nlog_window = \"500ms\"\n",
                &[],
                "telemetry.log_window",
            ),
            (
                "",
                &[("EDGEGW_INFERENCE__MAX_BATCH", "0")],
                "inference.max_batch",
            ),
            ("", &[("EDGEGW_INGEST__QOS", "\"one\"")], "ingest.qos"),
            (
                "[alerts]\nmax_per_minute = 0\n",
                &[],
                "alerts.max_per_minute",
            ),
            ("[sensors]\nepisode_end = 0\n", &[], "sensors.episode_end"),
            (
                "[sensors]\nalert_cooldown = 60\nalert_repeat = 30\n",
                &[],
                "sensors.alert_repeat",
            ),
            ("[sensors]\nepisode_gap = 0\n", &[], "sensors.episode_gap"),
        ];
        for (toml, env, key) in cases {
            let e = load_str(toml, env).unwrap_err();
            assert_eq!(&e.key, key, "{toml:?} {env:?} gave {e}");
        }
        let e = load_str("", &[("EDGEGW_INFERENCE__MAX_BATCH", "0")]).unwrap_err();
        assert!(e.reason.contains("EDGEGW_INFERENCE__MAX_BATCH"), "{e}");
        assert_eq!(load_str("[broken", &[]).unwrap_err().key, "<syntax>");
        let ok = "[telemetry]\notlp_endpoint = \"https://collector.local:4317\"\n";
        assert!(load_str(ok, &[]).is_ok());
        let no_reminders = "[sensors]\nalert_repeat = 0\n";
        assert!(load_str(no_reminders, &[]).is_ok());
    }

    #[test]
    fn env_overrides_apply() {
        let c = load_str(
            "[gateway]\nid = \"a\"\n",
            &[
                ("EDGEGW_GATEWAY__ID", "b"),
                ("EDGEGW_SENSORS__WINDOW", "128"),
                ("EDGEGW_INGEST__TOPICS", "[\"x/+/y\"]"),
                ("OTHER", "1"),
            ],
        )
        .unwrap();
        assert_eq!(c.gateway.id, "b");
        assert_eq!(c.sensors.window, 128);
        assert_eq!(c.ingest.topics, vec!["x/+/y".to_string()]);
    }

    #[test]
    fn env_overrides_reach_nested_keys() {
        let c = load_str(
            "",
            &[
                ("EDGEGW_FEEDBACK__KINDS__RAW_REQUEST__BURST", "3"),
                ("EDGEGW_FEEDBACK__KINDS__LABEL__RATE_PER_SEC", "2"),
            ],
        )
        .unwrap();
        assert_eq!(c.feedback.kinds.raw_request.burst, 3);
        assert_eq!(c.feedback.kinds.label.rate_per_sec, 2);
        assert_eq!(
            c.feedback.kinds.label.burst, 20,
            "the rest of the table kept"
        );
        let e = load_str("", &[("EDGEGW_FEEDBACK__KINDS__LABEL__BURST", "999")]).unwrap_err();
        assert_eq!(e.key, "feedback.kinds.label.burst");
    }
}
