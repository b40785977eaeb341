//! `--format sarif`: SARIF 2.1.0 as GitHub code scanning accepts it, rule metadata included.

use crate::cli::report::{FindingRow, Report};
use crate::engine::config::{Action, default_action};
use crate::engine::explain::{explain, summary};
use crate::engine::rules::RuleId;
use serde_json::{Value, json};

const INFO_URI: &str = "https://github.com/pidone/pidone";

fn level(action: Action) -> &'static str {
    match action {
        Action::Deny => "error",
        Action::Mutate | Action::Warn => "warning",
        Action::Ignore => "note",
    }
}

/// `shell-no-exec` -> `ShellNoExec`, the form SARIF viewers show as the rule name.
fn pascal(rule: RuleId) -> String {
    rule.as_str()
        .split('-')
        .map(|part| {
            let mut chars = part.chars();
            match chars.next() {
                Some(first) => first.to_ascii_uppercase().to_string() + chars.as_str(),
                None => String::new(),
            }
        })
        .collect()
}

fn rule_descriptor(rule: RuleId) -> Value {
    let help = explain(rule);
    json!({
        "id": rule.as_str(),
        "name": pascal(rule),
        "shortDescription": {"text": summary(rule)},
        "fullDescription": {"text": sentence(summary(rule))},
        "help": {"text": help, "markdown": format!("```\n{help}```")},
        "helpUri": format!("{INFO_URI}#rules"),
        "defaultConfiguration": {"level": level(default_action(rule))},
        "properties": {
            "tags": ["kubernetes", "pid1", "signals"],
            "precision": "high",
            "problem.severity": if default_action(rule) == Action::Deny { "error" } else { "warning" },
        }
    })
}

/// A message as a sentence: capital first letter, final full stop.
fn sentence(text: &str) -> String {
    let text = text.trim();
    let mut chars = text.chars();
    let mut out = match chars.next() {
        Some(first) => first.to_uppercase().chain(chars).collect::<String>(),
        None => return String::new(),
    };
    if !out.ends_with(['.', '!', '?']) {
        out.push('.');
    }
    out
}

fn consequence(action: Action) -> &'static str {
    match action {
        Action::Deny => "Enforce mode would deny this workload.",
        Action::Mutate => "Enforce mode would fix this automatically (see `pidone fix`).",
        Action::Warn => "Enforce mode would admit it with a warning.",
        Action::Ignore => "Enforce mode would ignore it.",
    }
}

/// What identifies an alert across runs: the object, the container and the rule, never
/// where the object happens to sit in the file.
pub fn fingerprint(f: &FindingRow) -> String {
    let ns = f.object.namespace.as_deref().unwrap_or("default");
    format!(
        "{}/{}/{}/{}:{}",
        f.object.kind,
        ns,
        f.object.name,
        f.container,
        f.rule.as_str()
    )
}

/// A result's properties: the action, and for side agents the confidence and evidence.
fn properties(f: &FindingRow) -> Value {
    let mut p = json!({"action": f.action.as_str(), "document": f.source.document});
    if let Some(confidence) = f.confidence {
        p["confidence"] = json!(confidence.as_str());
    }
    if !f.evidence.is_empty() {
        p["evidence"] = json!(f.evidence);
    }
    p
}

/// One finding as a SARIF result.
pub fn result(f: &FindingRow) -> Value {
    let index = RuleId::ALL.iter().position(|r| *r == f.rule).unwrap_or(0);
    let ns = f.object.namespace.as_deref().unwrap_or("default");
    let uri = if f.source.file == "-" {
        "stdin".to_string()
    } else {
        f.source.file.trim_start_matches("./").to_string()
    };
    let logical = format!("{}/{}/{}/{}", f.object.kind, ns, f.object.name, f.container);
    let region = match f.region {
        Some(r) => json!({"startLine": r.line, "startColumn": r.column}),
        None => json!({"startLine": f.source.line.unwrap_or(1)}),
    };
    json!({
        "ruleId": f.rule.as_str(),
        "ruleIndex": index,
        "level": level(f.action),
        "message": {"text": format!("{} To fix: {} {}", sentence(&f.message), sentence(&f.fix), consequence(f.action))},
        "locations": [{
            "physicalLocation": {
                "artifactLocation": {"uri": uri},
                "region": region
            },
            "logicalLocations": [{"fullyQualifiedName": logical, "kind": "object"}]
        }],
        "partialFingerprints": {"pidone/v2": fingerprint(f)},
        "properties": properties(f),
    })
}

pub fn render(report: &Report) -> Value {
    let results: Vec<Value> = report.findings.iter().map(result).collect();
    document(results)
}

/// The SARIF document around a list of results: the run, the tool and every rule.
pub fn document(results: Vec<Value>) -> Value {
    let rules: Vec<Value> = RuleId::ALL.iter().map(|r| rule_descriptor(*r)).collect();
    json!({
        "$schema": "https://json.schemastore.org/sarif-2.1.0.json",
        "version": "2.1.0",
        "runs": [{
            "tool": {"driver": {
                "name": "pidone",
                "version": env!("CARGO_PKG_VERSION"),
                "semanticVersion": env!("CARGO_PKG_VERSION"),
                "informationUri": INFO_URI,
                "rules": rules,
            }},
            "results": results,
        }]
    })
}
