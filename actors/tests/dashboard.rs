//! Keeps `docs/grafana/edgegw.json` honest against the instruments the gateway exposes.
//!
//! Design constraints: the dashboard is checked as Grafana and Prometheus will see it, from
//! the JSON file and from `Metrics::new().render()` (the `/metrics` text), never from a second
//! list of names kept by hand — except SPEC's, which is the contract and is copied below.
//! Every check returns the problems it finds instead of panicking, so a test can feed it a
//! broken dashboard and see it fail.

#![allow(clippy::unwrap_used)] // tests may unwrap: a failure here should stop the run loudly.

use std::collections::{BTreeMap, BTreeSet};

use edgegw_actors::metrics::Metrics;
use serde_json::Value;

/// The metric names of `SPEC.md` ("Metric names", in the shared project folder). Each must be
/// shown by at least one panel.
const SPEC_METRICS: &[&str] = &[
    "edgegw_samples_ingested_total",
    "edgegw_ingest_rejected_total",
    "edgegw_ingest_bytes_total",
    "edgegw_inferences_total",
    "edgegw_inference_batch_size",
    "edgegw_inference_seconds",
    "edgegw_decision_latency_seconds",
    "edgegw_alerts_total",
    "edgegw_alerts_suppressed_total",
    "edgegw_uplink_messages_total",
    "edgegw_uplink_bytes_total",
    "edgegw_store_backlog",
    "edgegw_store_bytes",
    "edgegw_store_evicted_total",
    "edgegw_actor_restarts_total",
    "edgegw_feedback_total",
    "edgegw_feedback_dropped_total",
    "edgegw_sensors_active",
];

/// What every panel and target names as its data source: the dashboard's `datasource`
/// variable (whose default is the `DS_PROMETHEUS` input chosen at import).
const DATASOURCE_UID: &str = "${datasource}";

/// The selector every metric in a panel query carries, so the `job`/`instance` variables apply.
const SELECTOR: &str = r#"{job=~"$job", instance=~"$instance""#;

/// Labels a query may group by or a legend may show: the scrape's, the histograms' `le`, and
/// the fixed label sets of `actors/src/metrics.rs`.
const LABELS: &[&str] = &["job", "instance", "le", "reason", "class", "stage", "kind"];

fn dashboard() -> Value {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../docs/grafana/edgegw.json");
    let text = std::fs::read_to_string(path).unwrap();
    serde_json::from_str(&text).unwrap()
}

/// Every panel, rows included, with the panels of collapsed rows.
fn panels(dash: &Value) -> Vec<&Value> {
    fn walk<'a>(list: &'a Value, out: &mut Vec<&'a Value>) {
        for p in list.as_array().into_iter().flatten() {
            out.push(p);
            if let Some(inner) = p.get("panels") {
                walk(inner, out);
            }
        }
    }
    let mut out = Vec::new();
    walk(&dash["panels"], &mut out);
    out
}

/// `(panel title, expr)` for every target of every panel.
fn exprs(dash: &Value) -> Vec<(String, String)> {
    let mut out = Vec::new();
    for p in panels(dash) {
        let title = p["title"].as_str().unwrap_or("?").to_string();
        for t in p["targets"].as_array().into_iter().flatten() {
            if let Some(e) = t["expr"].as_str() {
                out.push((title.clone(), e.to_string()));
            }
        }
    }
    out
}

/// Identifiers starting with `edgegw_`, each with the rest of the expression after it.
fn metric_refs(expr: &str) -> Vec<(&str, &str)> {
    let is_ident = |c: char| c.is_ascii_alphanumeric() || c == '_' || c == ':';
    let mut out = Vec::new();
    let mut start = None;
    for (i, c) in expr.char_indices().chain([(expr.len(), ' ')]) {
        match (start, is_ident(c)) {
            (None, true) => start = Some(i),
            (Some(s), false) => {
                let word = &expr[s..i];
                // A word glued to `$` is a Grafana variable, not a metric.
                let var = expr[..s].ends_with('$');
                if word.starts_with("edgegw_") && !var {
                    out.push((word, &expr[i..]));
                }
                start = None;
            }
            _ => {}
        }
    }
    out
}

/// Every sample name the exposition can carry → its family, from the `# TYPE` lines, which
/// prometheus_client prints for every registered family, with or without label values yet.
fn exposed(text: &str) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    for rest in text.lines().filter_map(|l| l.strip_prefix("# TYPE ")) {
        let mut it = rest.split_whitespace();
        let (Some(family), Some(kind)) = (it.next(), it.next()) else {
            continue;
        };
        let suffixes: &[&str] = match kind {
            "counter" => &["_total"],
            "histogram" => &["_bucket", "_sum", "_count"],
            "summary" => &["", "_sum", "_count"],
            _ => &[""],
        };
        for s in suffixes {
            out.insert(format!("{family}{s}"), family.to_string());
        }
    }
    out
}

/// Label names inside `by (…)` / `without (…)` clauses and `{{…}}` legends.
fn grouping_labels(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    for key in ["by (", "without (", "by(", "without("] {
        for (i, _) in text.match_indices(key) {
            let rest = &text[i + key.len()..];
            let inner = &rest[..rest.find(')').unwrap_or(rest.len())];
            out.extend(inner.split(',').map(|l| l.trim().to_string()));
        }
    }
    for (i, _) in text.match_indices("{{") {
        let rest = &text[i + 2..];
        let inner = &rest[..rest.find("}}").unwrap_or(rest.len())];
        out.push(inner.trim().to_string());
    }
    out
}

/// Everything wrong with `dash` against the exposition `text`; empty when it is honest.
fn problems(dash: &Value, text: &str) -> Vec<String> {
    let mut out = Vec::new();
    let exposed = exposed(text);

    // Unique ids; a data source on every panel and target that names the variable.
    let mut ids = BTreeMap::new();
    for p in panels(dash) {
        let title = p["title"].as_str().unwrap_or("?");
        match p["id"].as_u64() {
            Some(id) => {
                if let Some(other) = ids.insert(id, title) {
                    out.push(format!("panel id {id} used by '{other}' and '{title}'"));
                }
            }
            None => out.push(format!("panel '{title}' has no numeric id")),
        }
        if p["type"] == "row" {
            continue;
        }
        if p["datasource"]["uid"] != DATASOURCE_UID {
            out.push(format!(
                "panel '{title}': datasource is not {DATASOURCE_UID}"
            ));
        }
        let targets = p["targets"].as_array().map(Vec::as_slice).unwrap_or(&[]);
        if targets.is_empty() {
            out.push(format!("panel '{title}' has no query"));
        }
        for t in targets {
            if t["datasource"]["uid"] != DATASOURCE_UID {
                out.push(format!(
                    "panel '{title}': a target's datasource is not {DATASOURCE_UID}"
                ));
            }
            if let Some(legend) = t["legendFormat"].as_str() {
                for l in grouping_labels(legend) {
                    if !LABELS.contains(&l.as_str()) {
                        out.push(format!("panel '{title}': legend shows unknown label '{l}'"));
                    }
                }
            }
        }
    }

    // Every metric referenced exists, under the dashboard's selector; grouping labels exist.
    let mut shown = BTreeSet::new();
    for (title, e) in exprs(dash) {
        let refs = metric_refs(&e);
        if refs.is_empty() {
            out.push(format!(
                "panel '{title}': query names no edgegw_ metric: {e}"
            ));
        }
        for (name, after) in refs {
            match exposed.get(name) {
                Some(family) => {
                    shown.insert(name.to_string());
                    shown.insert(family.clone());
                }
                None => out.push(format!(
                    "panel '{title}': {name} is not exposed by /metrics"
                )),
            }
            if !after.starts_with(SELECTOR) {
                out.push(format!(
                    "panel '{title}': {name} lacks the selector {SELECTOR}}}"
                ));
            }
        }
        for l in grouping_labels(&e) {
            if !LABELS.contains(&l.as_str()) {
                out.push(format!("panel '{title}': groups by unknown label '{l}'"));
            }
        }
    }

    // The variables query a metric that exists, through the same data source.
    for v in dash["templating"]["list"].as_array().into_iter().flatten() {
        if v["type"] != "query" {
            continue;
        }
        let name = v["name"].as_str().unwrap_or("?");
        if v["datasource"]["uid"] != DATASOURCE_UID {
            out.push(format!(
                "variable '{name}': datasource is not {DATASOURCE_UID}"
            ));
        }
        for (m, _) in metric_refs(v["definition"].as_str().unwrap_or("")) {
            if !exposed.contains_key(m) {
                out.push(format!("variable '{name}': {m} is not exposed by /metrics"));
            }
        }
    }

    // Coverage: SPEC's names (samples, or histogram families), and every exposed family.
    for name in SPEC_METRICS {
        if !shown.contains(*name) {
            out.push(format!("SPEC metric {name} is on no panel"));
        }
    }
    for family in exposed.values() {
        if !shown.contains(family) {
            out.push(format!("exposed family {family} is on no panel"));
        }
    }
    out.sort();
    out.dedup();
    out
}

#[test]
fn dashboard_matches_the_exposed_metrics() {
    let found = problems(&dashboard(), &Metrics::new().render());
    assert!(
        found.is_empty(),
        "docs/grafana/edgegw.json:\n{}",
        found.join("\n")
    );
}

#[test]
fn every_spec_metric_is_registered() {
    let exposed = exposed(&Metrics::new().render());
    for name in SPEC_METRICS {
        let present = exposed.contains_key(*name) || exposed.values().any(|f| f == name);
        assert!(present, "SPEC metric {name} is not exposed");
    }
}

#[test]
fn the_import_input_feeds_the_datasource_variable() {
    let dash = dashboard();
    assert!(dash["schemaVersion"].as_u64().unwrap() >= 39);
    let input = &dash["__inputs"][0];
    assert_eq!(input["name"], "DS_PROMETHEUS");
    assert_eq!(input["type"], "datasource");
    assert_eq!(input["pluginId"], "prometheus");
    let vars = dash["templating"]["list"].as_array().unwrap();
    let ds = vars.iter().find(|v| v["name"] == "datasource").unwrap();
    assert_eq!(ds["type"], "datasource");
    assert_eq!(ds["query"], "prometheus");
    assert_eq!(ds["current"]["value"], "${DS_PROMETHEUS}");
    for name in ["job", "instance"] {
        let v = vars.iter().find(|v| v["name"] == name).unwrap();
        let def = v["definition"].as_str().unwrap();
        assert!(
            def.starts_with("label_values(edgegw_samples_ingested_total"),
            "{def}"
        );
    }
}

/// The checks catch what they are for: a typo in a metric name, a missing selector, a
/// duplicate id, a hard-wired data source, a SPEC metric dropped from the dashboard.
#[test]
fn broken_dashboards_are_caught() {
    let text = Metrics::new().render();
    let edit = |f: &dyn Fn(&mut String)| {
        let mut s = serde_json::to_string(&dashboard()).unwrap();
        f(&mut s);
        problems(&serde_json::from_str(&s).unwrap(), &text)
    };
    let has = |found: &[String], what: &str| {
        assert!(
            found.iter().any(|p| p.contains(what)),
            "expected a problem about '{what}', got {found:#?}"
        );
    };

    let typo = edit(&|s| *s = s.replacen("edgegw_alerts_total", "edgegw_alert_total", 1));
    has(&typo, "edgegw_alert_total is not exposed");

    let counter_without_total =
        edit(&|s| *s = s.replace("edgegw_feedback_total", "edgegw_feedback"));
    has(&counter_without_total, "edgegw_feedback is not exposed");
    has(
        &counter_without_total,
        "SPEC metric edgegw_feedback_total is on no panel",
    );
    has(
        &counter_without_total,
        "exposed family edgegw_feedback is on no panel",
    );

    let bare = edit(&|s| {
        *s = s.replacen(
            r#"edgegw_sensors_active{job=~\"$job\", instance=~\"$instance\"}"#,
            "edgegw_sensors_active",
            1,
        )
    });
    has(&bare, "edgegw_sensors_active lacks the selector");

    let wired = edit(&|s| *s = s.replacen("${datasource}", "abc123", 1));
    has(&wired, "is not ${datasource}");

    let mut dash = dashboard();
    let second = dash["panels"][2]["id"].clone();
    dash["panels"][3]["id"] = second.clone();
    has(
        &problems(&dash, &text),
        &format!("panel id {second} used by"),
    );

    let regrouped = edit(&|s| *s = s.replacen("by (class)", "by (clas)", 1));
    has(&regrouped, "groups by unknown label 'clas'");
}

#[test]
fn metric_refs_skip_variables_and_keep_suffixes() {
    let e = r#"sum by (le) (rate(edgegw_x_bucket{job=~"$job"}[$__rate_interval])) / $edgegw_y"#;
    let names: Vec<&str> = metric_refs(e).into_iter().map(|(n, _)| n).collect();
    assert_eq!(names, ["edgegw_x_bucket"]);
    let text = "# TYPE edgegw_x histogram\n# TYPE edgegw_c counter\n# TYPE edgegw_g gauge\n";
    let ex = exposed(text);
    assert_eq!(ex["edgegw_x_bucket"], "edgegw_x");
    assert_eq!(ex["edgegw_c_total"], "edgegw_c");
    assert_eq!(ex["edgegw_g"], "edgegw_g");
    assert!(!ex.contains_key("edgegw_c"));
}
