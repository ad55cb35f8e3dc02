//! Results: what a suite run measured, on which machine, and its markdown table.
//!
//! The table has a row per figure of each case and a column per server; every cell but the
//! baseline's shows its ratio to the bare baseline. `bench/README.md` holds the latest table
//! between [`BEGIN`] and [`END`], so a rerun replaces it and leaves the prose around it alone.
//! A presence run (Alight only) has its own table, a column per case, between
//! [`PRESENCE_BEGIN`] and [`PRESENCE_END`].

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::Path;
use std::{fs, io};

use serde::{Deserialize, Serialize};

use crate::scenario::{Metric, Outcome};

/// Marks the start of the generated part of the README.
pub const BEGIN: &str = "<!-- alight-bench:results:begin -->";
/// Marks its end.
pub const END: &str = "<!-- alight-bench:results:end -->";
/// Marks the start of the presence results in the README.
pub const PRESENCE_BEGIN: &str = "<!-- alight-bench:presence:begin -->";
/// Marks their end.
pub const PRESENCE_END: &str = "<!-- alight-bench:presence:end -->";
/// The server every ratio is taken against.
pub const BASELINE: &str = "bare";

/// One case run against one server.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Record {
    /// `bare`, `alight`, `socketioxide` or `node`.
    pub server: String,
    /// `idle`, `fanout`, `echo` or `churn`.
    pub scenario: String,
    /// What was measured.
    pub outcome: Outcome,
    /// Wall time of the case, server start to stop.
    pub seconds: f64,
}

/// Where and with what a run was made.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Meta {
    /// UTC time the run started.
    pub started: String,
    /// Logical CPUs of the machine.
    pub nproc: usize,
    /// `model name` from `/proc/cpuinfo`.
    pub cpu_model: String,
    /// Kernel release.
    pub kernel: String,
    /// `/proc/loadavg`'s first three fields when the run started.
    pub load_at_start: String,
    /// The same when it ended (empty in results written before it was recorded).
    #[serde(default)]
    pub load_at_end: String,
    /// How server and generator were placed.
    pub placement: String,
    /// `(component, version)` pairs.
    pub versions: Vec<(String, String)>,
    /// Servers left out, and why.
    pub skipped: Vec<String>,
    /// Whether this was a smoke run (tiny sizes; not results).
    pub smoke: bool,
    /// Wall time of the whole run.
    pub seconds: f64,
}

/// A whole run.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Results {
    /// The machine and versions.
    pub meta: Meta,
    /// Every case against every server, in run order.
    pub records: Vec<Record>,
}

impl Results {
    /// Reads results written by [`Results::save`].
    pub fn load(path: &Path) -> io::Result<Self> {
        let text = fs::read_to_string(path)?;
        serde_json::from_str(&text).map_err(io::Error::other)
    }

    /// What makes a smoke run fail: per record, `None` if it ran cleanly, or why not: a case that
    /// did not run, a failed client step, a lost delivery, a server that exited.
    pub fn problems(&self) -> Vec<(&Record, Option<String>)> {
        self.records
            .iter()
            .map(|r| {
                let o = &r.outcome;
                let why = if o.metrics.is_empty() {
                    Some(o.notes.join("; "))
                } else if let Some(n) = o.notes.iter().find(|n| {
                    // Not "the publisher finished a send ... behind its schedule": a figure.
                    n.contains(" failed (") || n.contains("exited") || n.starts_with("publisher")
                }) {
                    Some(n.clone())
                } else if o.metric("missing deliveries").is_some_and(|m| m > 0.0) {
                    Some("deliveries went missing".to_owned())
                } else if o.metric("connections held").is_some_and(|m| m == 0.0) {
                    Some("no connection held".to_owned())
                } else if o.metric("lists complete") != o.metric("members joined")
                    || o.metric("clients dropped").is_some_and(|m| m > 0.0)
                {
                    Some("presence lists incomplete or clients dropped".to_owned())
                } else {
                    None
                };
                (r, why)
            })
            .collect()
    }

    /// Whether these are the results of a presence run (their own table and README section).
    pub fn is_presence(&self) -> bool {
        !self.records.is_empty() && self.records.iter().all(|r| r.scenario == "presence")
    }

    /// Writes the results as JSON.
    pub fn save(&self, path: &Path) -> io::Result<()> {
        if let Some(dir) = path.parent() {
            fs::create_dir_all(dir)?;
        }
        let text = serde_json::to_string_pretty(self).map_err(io::Error::other)?;
        fs::write(path, text + "\n")
    }
}

/// The servers in the order of the table's columns: the baseline first, the rest as run.
fn server_columns(records: &[Record]) -> Vec<String> {
    let mut servers = vec![BASELINE.to_owned()];
    for r in records {
        if !servers.contains(&r.server) {
            servers.push(r.server.clone());
        }
    }
    servers
}

/// The machine, the load, the placement and the versions: the paragraph above a table.
fn header(meta: &Meta) -> String {
    let mut out = String::new();
    if meta.smoke {
        out.push_str(
            "**Smoke run: tiny sizes, to check the pipeline. These are not results.**\n\n",
        );
    }
    let load_at_end = if meta.load_at_end.is_empty() {
        String::new()
    } else {
        format!(", at the end {}", meta.load_at_end)
    };
    let _ = writeln!(
        out,
        "Measured {} on {}, {} logical CPUs, Linux {}; load average at the start {}{load_at_end}. \
         {} The run took {:.0} s.\n",
        meta.started,
        meta.cpu_model,
        meta.nproc,
        meta.kernel,
        meta.load_at_start,
        meta.placement,
        meta.seconds
    );
    if !meta.versions.is_empty() {
        let versions: Vec<String> = meta
            .versions
            .iter()
            .map(|(name, version)| format!("{name} {version}"))
            .collect();
        let _ = writeln!(out, "Versions: {}.\n", versions.join(", "));
    }
    for skipped in &meta.skipped {
        let _ = writeln!(out, "Skipped: {skipped}.\n");
    }
    out
}

/// The markdown of a presence run: a row per figure, a column per case (one server, no ratios).
pub fn presence_markdown(results: &Results) -> String {
    let mut out = header(&results.meta);
    let cases: Vec<(&str, &str)> = results
        .records
        .iter()
        .map(|r| (r.server.as_str(), r.outcome.case.as_str()))
        .collect();
    let _ = writeln!(
        out,
        "| figure | {} |",
        cases
            .iter()
            .map(|(server, case)| format!("{server} {case}"))
            .collect::<Vec<_>>()
            .join(" | ")
    );
    let _ = writeln!(out, "|---|{}", "---:|".repeat(cases.len()));
    let mut figures: Vec<&str> = Vec::new();
    for r in &results.records {
        for m in &r.outcome.metrics {
            if !figures.contains(&m.name.as_str()) {
                figures.push(&m.name);
            }
        }
    }
    for figure in figures {
        let mut line = format!("| {figure} |");
        for r in &results.records {
            let cell = r
                .outcome
                .metrics
                .iter()
                .find(|m| m.name == figure)
                .map_or_else(|| "—".to_owned(), format_value);
            let _ = write!(line, " {cell} |");
        }
        out.push_str(&line);
        out.push('\n');
    }
    out.push_str("\n<details><summary>Notes per case</summary>\n\n");
    for r in &results.records {
        for note in &r.outcome.notes {
            let _ = writeln!(
                out,
                "- {} {}: {}",
                r.server,
                r.outcome.case,
                note.replace('|', "\\|")
            );
        }
    }
    out.push_str("\n</details>\n");
    out
}

/// The markdown section: machine, versions, the table and the notes.
pub fn markdown(results: &Results) -> String {
    let mut out = header(&results.meta);
    out.push_str(
        "Each cell is the figure and, in parentheses, its ratio to the bare baseline. Above 1 is \
         better for rates and counts of work done; below 1 is better for latency, memory and \
         failures.\n\n",
    );
    if results
        .records
        .iter()
        .any(|r| r.outcome.notes.iter().any(|n| n.starts_with("median of")))
    {
        out.push_str(
            "The fan-out, echo and churn figures of bare and alight are medians of runs \
             interleaved between the two (each figure separately); the notes list every run's \
             rate and p99.\n\n",
        );
    }

    let servers = server_columns(&results.records);
    let _ = writeln!(
        out,
        "| scenario | case | figure | {} |",
        servers.join(" | ")
    );
    let _ = writeln!(
        out,
        "|---|---|---|{}",
        servers.iter().map(|_| "---:|").collect::<String>()
    );

    // Rows in the order cases and figures were first seen.
    let mut rows: Vec<(String, String, String)> = Vec::new();
    let mut cells: BTreeMap<(String, String, String, String), &Metric> = BTreeMap::new();
    for r in &results.records {
        for m in &r.outcome.metrics {
            let row = (r.scenario.clone(), r.outcome.case.clone(), m.name.clone());
            if !rows.contains(&row) {
                rows.push(row.clone());
            }
            cells.insert((row.0, row.1, row.2, r.server.clone()), m);
        }
    }
    for (scenario, case, figure) in &rows {
        let key = |server: &str| {
            (
                scenario.clone(),
                case.clone(),
                figure.clone(),
                server.to_owned(),
            )
        };
        let base = cells.get(&key(BASELINE)).copied();
        let mut line = format!("| {scenario} | {case} | {figure} |");
        for server in &servers {
            let cell = match cells.get(&key(server)) {
                None => "—".to_owned(),
                Some(m) if server == BASELINE => format_value(m),
                Some(m) => match base {
                    Some(b) => format!("{} ({})", format_value(m), format_ratio(m, b)),
                    None => format_value(m),
                },
            };
            let _ = write!(line, " {cell} |");
        }
        out.push_str(&line);
        out.push('\n');
    }

    out.push_str("\n<details><summary>Notes per case</summary>\n\n");
    for r in &results.records {
        for note in &r.outcome.notes {
            let _ = writeln!(
                out,
                "- {} {} {}: {}",
                r.server,
                r.scenario,
                r.outcome.case,
                note.replace('|', "\\|")
            );
        }
    }
    out.push_str("\n</details>\n");
    out
}

/// A figure with its unit, rounded for reading.
pub fn format_value(m: &Metric) -> String {
    if m.unit == "yes/no" {
        return if m.value >= 0.5 { "yes" } else { "no" }.to_owned();
    }
    let number = if m.unit.is_empty() && m.value.fract() == 0.0 && m.value.is_finite() {
        group_thousands(m.value as i64)
    } else {
        format_number(m.value)
    };
    match m.unit.as_str() {
        "" | "/s" => number,
        unit => format!("{number} {unit}"),
    }
}

fn format_ratio(m: &Metric, base: &Metric) -> String {
    if m.unit == "yes/no" {
        return if (m.value >= 0.5) == (base.value >= 0.5) {
            "same"
        } else {
            "differs"
        }
        .to_owned();
    }
    if base.value == 0.0 {
        return if m.value == 0.0 { "=" } else { "base 0" }.to_owned();
    }
    format!("{:.2}×", m.value / base.value)
}

/// Thousands separators above 1,000; three significant digits below.
pub fn format_number(v: f64) -> String {
    if !v.is_finite() {
        return "?".to_owned();
    }
    let a = v.abs();
    if a >= 1000.0 {
        group_thousands(v.round() as i64)
    } else if a >= 100.0 {
        format!("{v:.0}")
    } else if a >= 10.0 {
        format!("{v:.1}")
    } else if a >= 1.0 {
        format!("{v:.2}")
    } else {
        format!("{v:.3}")
    }
}

/// An integer with thousands separators.
fn group_thousands(n: i64) -> String {
    let digits = n.unsigned_abs().to_string();
    let mut grouped = String::with_capacity(digits.len() + digits.len() / 3 + 1);
    if n < 0 {
        grouped.push('-');
    }
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            grouped.push(',');
        }
        grouped.push(c);
    }
    grouped
}

/// Replaces the part of `readme` between the markers with `section`, or appends a results heading
/// with the markers if they are missing.
pub fn splice(readme: &str, section: &str) -> String {
    splice_between(readme, section, (BEGIN, END), "Results")
}

fn splice_between(
    readme: &str,
    section: &str,
    (begin, end): (&str, &str),
    heading: &str,
) -> String {
    let generated = format!("{begin}\n{section}{end}");
    match (readme.find(begin), readme.find(end)) {
        (Some(b), Some(e)) if b < e => {
            format!("{}{generated}{}", &readme[..b], &readme[e + end.len()..])
        }
        _ => format!("{}\n\n## {heading}\n\n{generated}\n", readme.trim_end()),
    }
}

/// The markdown of `results`: the presence table for a presence run, the suite table otherwise.
pub fn render(results: &Results) -> String {
    if results.is_presence() {
        presence_markdown(results)
    } else {
        markdown(results)
    }
}

/// Writes `results` into the README at `path` between the markers of their kind.
pub fn write_readme(path: &Path, results: &Results) -> io::Result<()> {
    let readme = fs::read_to_string(path).unwrap_or_default();
    let text = if results.is_presence() {
        splice_between(
            &readme,
            &presence_markdown(results),
            (PRESENCE_BEGIN, PRESENCE_END),
            "Presence results",
        )
    } else {
        splice(&readme, &markdown(results))
    };
    fs::write(path, text)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scenario::Better;

    fn record(server: &str, value: f64) -> Record {
        Record {
            server: server.to_owned(),
            scenario: "echo".to_owned(),
            outcome: Outcome {
                case: "C=1".to_owned(),
                metrics: vec![
                    Metric::new("replies/s", value, "/s", Better::Higher),
                    Metric::new("latency p50", value / 1000.0, "ms", Better::Lower),
                    Metric::new("server CPU per reply", 3.0e4 / value, "µs", Better::Lower),
                ],
                notes: vec!["a | b".to_owned()],
            },
            seconds: 1.0,
        }
    }

    #[test]
    fn table_has_ratios_to_bare() {
        let results = Results {
            meta: Meta::default(),
            records: vec![record("alight", 1500.0), record("bare", 3000.0)],
        };
        let md = markdown(&results);
        assert!(
            md.contains("| scenario | case | figure | bare | alight |"),
            "{md}"
        );
        assert!(
            md.contains("| echo | C=1 | replies/s | 3,000 | 1,500 (0.50×) |"),
            "{md}"
        );
        assert!(
            md.contains("| echo | C=1 | latency p50 | 3.00 ms | 1.50 ms (0.50×) |"),
            "{md}"
        );
        assert!(
            md.contains("| echo | C=1 | server CPU per reply | 10.0 µs | 20.0 µs (2.00×) |"),
            "{md}"
        );
        assert!(md.contains(r"a \| b"), "{md}");
    }

    #[test]
    fn smoke_problems() {
        let mut failed = record("alight", 10.0);
        failed.outcome.notes = vec!["2 pings failed (timeout: 2); first: no reply".to_owned()];
        let mut not_run = record("node", 0.0);
        not_run.outcome.metrics.clear();
        not_run.outcome.notes = vec!["not run: cannot start".to_owned()];
        let mut late = record("bare", 10.0);
        late.outcome.notes =
            vec!["the publisher finished a send up to 3 ms behind its schedule".to_owned()];
        let mut lost = record("bare", 10.0);
        lost.outcome.notes = vec!["publisher: the connection closed".to_owned()];
        let results = Results {
            meta: Meta::default(),
            records: vec![late, failed, not_run, lost],
        };
        let why: Vec<Option<String>> = results.problems().into_iter().map(|(_, w)| w).collect();
        assert_eq!(why[0], None);
        assert!(why[3].is_some());
        assert!(
            why[1]
                .as_deref()
                .is_some_and(|w| w.contains("pings failed"))
        );
        assert_eq!(why[2].as_deref(), Some("not run: cannot start"));
    }

    #[test]
    fn numbers_read_well() {
        assert_eq!(format_number(1_234_567.4), "1,234,567");
        assert_eq!(format_number(12.345), "12.3");
        assert_eq!(format_number(0.1234), "0.123");
        assert_eq!(format_number(7.0), "7.00");
        let count = Metric::new("missing", 12_345.0, "", Better::Lower);
        assert_eq!(format_value(&count), "12,345");
        assert_eq!(format_number(-4321.0), "-4,321");
    }

    #[test]
    fn splice_replaces_between_markers() {
        let readme = format!("# Bench\n\nintro\n\n{BEGIN}\nold\n{END}\n\nafter\n");
        let out = splice(&readme, "new\n");
        assert_eq!(
            out,
            format!("# Bench\n\nintro\n\n{BEGIN}\nnew\n{END}\n\nafter\n")
        );
        let appended = splice("# Bench\n", "new\n");
        assert!(appended.ends_with(&format!("## Results\n\n{BEGIN}\nnew\n{END}\n")));
    }
}
