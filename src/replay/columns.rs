//! What the columns of a recorded CSV file are: which one holds the timestamp, which are labels
//! (never published), and the sensor each value column becomes.
//!
//! Rules (also in `docs/operations.md`, "Replaying recorded data"):
//! - Column names are normalised: surrounding whitespace dropped, lower-cased, every character
//!   that is not an ASCII letter or digit replaced by `_` (`Volume Flow RateRMS` →
//!   `volume_flow_raterms`). A column with an empty name (a pandas index, a trailing
//!   delimiter) is ignored.
//! - The timestamp column is the first whose normalised name is one of [`TIMESTAMP_COLUMNS`].
//! - Label columns ([`LABEL_COLUMNS`]) are not published; every other column is a value column.
//! - A value column is the sensor `prefix + normalised column name`, except in a file with a
//!   single value column (NAB's `timestamp,value`): there the sensor is `prefix + normalised
//!   file stem`, or every NAB file would be the same sensor `value`.
//!
//! Design constraints: every sensor name is a valid single MQTT topic level the gateway
//! accepts (1..=128 bytes, no `/`, `+`, `#`), checked here before anything is published.

/// Names of the timestamp column (normalised), in no particular order.
pub const TIMESTAMP_COLUMNS: [&str; 7] = [
    "timestamp",
    "datetime",
    "date_time",
    "time",
    "ts",
    "date",
    "time_stamp",
];

/// Names of label columns (normalised): ground truth of anomaly data sets, never published.
pub const LABEL_COLUMNS: [&str; 4] = ["label", "anomaly", "changepoint", "is_anomaly"];

/// Longest sensor id the gateway accepts (a topic level), bytes.
pub const MAX_SENSOR_LEN: usize = 128;

/// `name` lower-cased, non-alphanumerics (ASCII) as `_`, surrounding whitespace dropped.
pub fn normalise(name: &str) -> String {
    name.trim_matches(|c: char| c.is_whitespace() || c == '\u{feff}')
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() {
                c.to_ascii_lowercase()
            } else {
                '_'
            }
        })
        .collect()
}

/// The columns of one file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Layout {
    /// Index of the timestamp column.
    pub ts: usize,
    /// Value columns: index and sensor name, in file order.
    pub values: Vec<(usize, String)>,
}

/// Checks `--sensor-prefix`: it becomes part of a topic level.
pub fn check_prefix(prefix: &str) -> Result<(), String> {
    if prefix.contains(['/', '+', '#', '\0']) {
        return Err(format!(
            "--sensor-prefix {prefix:?} must not contain '/', '+', '#' (it is part of one topic level)"
        ));
    }
    Ok(())
}

/// The layout of a file whose header is `header` and whose file stem is `stem`.
pub fn layout<'h>(
    header: impl IntoIterator<Item = &'h str>,
    stem: &str,
    prefix: &str,
) -> Result<Layout, String> {
    let names: Vec<String> = header.into_iter().map(normalise).collect();
    let ts = names
        .iter()
        .position(|n| TIMESTAMP_COLUMNS.contains(&n.as_str()))
        .ok_or_else(|| {
            format!(
                "no timestamp column (a column named one of {}; found: {})",
                TIMESTAMP_COLUMNS.join(", "),
                names.join(", ")
            )
        })?;
    let value_cols: Vec<usize> = (0..names.len())
        .filter(|&i| i != ts && !names[i].is_empty())
        .filter(|&i| !LABEL_COLUMNS.contains(&names[i].as_str()))
        .collect();
    let values: Vec<(usize, String)> = match value_cols.as_slice() {
        [] => return Err("no value column besides the timestamp and labels".into()),
        [only] => vec![(*only, format!("{prefix}{}", normalise(stem)))],
        many => many
            .iter()
            .map(|&i| (i, format!("{prefix}{}", names[i])))
            .collect(),
    };
    for (k, (_, name)) in values.iter().enumerate() {
        if name.is_empty() || name.len() > MAX_SENSOR_LEN {
            return Err(format!(
                "sensor name {name:?} must be 1 to {MAX_SENSOR_LEN} bytes"
            ));
        }
        if let Some((_, dup)) = values[..k].iter().find(|(_, n)| n == name) {
            return Err(format!(
                "two value columns become the same sensor {dup:?}; rename one"
            ));
        }
    }
    Ok(Layout { ts, values })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_normalised() {
        assert_eq!(normalise("Accelerometer1RMS"), "accelerometer1rms");
        assert_eq!(normalise("Volume Flow RateRMS"), "volume_flow_raterms");
        assert_eq!(normalise(" value "), "value");
        assert_eq!(normalise("\u{feff}timestamp"), "timestamp");
        assert_eq!(normalise("temp.°C-1"), "temp__c_1");
        assert_eq!(normalise("Twitter_volume_GOOG"), "twitter_volume_goog");
        assert_eq!(
            normalise("exchange-2_cpc_results"),
            "exchange_2_cpc_results"
        );
    }

    #[test]
    fn nab_single_value_column_is_named_after_the_file() {
        let l = layout(["timestamp", "value"], "speed_7578", "").unwrap();
        assert_eq!(l.ts, 0);
        assert_eq!(l.values, vec![(1, "speed_7578".to_string())]);
        let l = layout(["timestamp", "value"], "exchange-2_cpc", "nab_").unwrap();
        assert_eq!(l.values, vec![(1, "nab_exchange_2_cpc".to_string())]);
    }

    #[test]
    fn skab_labels_are_dropped_and_names_normalised() {
        let h = "datetime;Accelerometer1RMS;Volume Flow RateRMS;anomaly;changepoint";
        let l = layout(h.split(';'), "skab", "p_").unwrap();
        assert_eq!(l.ts, 0);
        assert_eq!(
            l.values,
            vec![
                (1, "p_accelerometer1rms".to_string()),
                (2, "p_volume_flow_raterms".to_string())
            ]
        );
    }

    #[test]
    fn timestamp_column_anywhere_empty_names_ignored() {
        let l = layout(["", "a", "Time", "b", "Label"], "f", "").unwrap();
        assert_eq!(l.ts, 2);
        assert_eq!(l.values, vec![(1, "a".into()), (3, "b".into())]);
    }

    #[test]
    fn bad_layouts_are_refused_with_the_reason() {
        let e = layout(["when", "value"], "f", "").unwrap_err();
        assert!(e.contains("no timestamp column"), "{e}");
        let e = layout(["timestamp", "is_anomaly"], "f", "").unwrap_err();
        assert!(e.contains("no value column"), "{e}");
        let e = layout(["ts", "A b", "a_b"], "f", "").unwrap_err();
        assert!(e.contains("\"a_b\""), "{e}");
        let long = "x".repeat(129);
        assert!(layout(["ts", &long, "y"], "f", "").is_err());
        assert!(check_prefix("site1_").is_ok());
        assert!(check_prefix("site/1").is_err());
        assert!(check_prefix("+").is_err());
    }
}
