//! An audit report as SARIF 2.1.0 (the format GitHub code scanning reads),
//! built with the `serde-sarif` types generated from the OASIS schema.

use serde_sarif::sarif::{
    ArtifactLocation, Location, Message, MultiformatMessageString, PhysicalLocation, Region, ReportingConfiguration,
    ReportingConfigurationLevel, ReportingDescriptor, Result as SarifResult, ResultLevel, Run, Sarif, Tool,
    ToolComponent,
};

use super::{Report, RuleId, Severity};

/// SARIF's result `level` for a severity.
fn level(severity: Severity) -> ResultLevel {
    match severity {
        Severity::High => ResultLevel::Error,
        Severity::Medium => ResultLevel::Warning,
        Severity::Low => ResultLevel::Note,
    }
}

/// The same, as a rule's default configuration level.
fn default_level(severity: Severity) -> ReportingConfigurationLevel {
    match severity {
        Severity::High => ReportingConfigurationLevel::Error,
        Severity::Medium => ReportingConfigurationLevel::Warning,
        Severity::Low => ReportingConfigurationLevel::Note,
    }
}

/// The SARIF log of `report`; `version` is pgbin's.
pub fn log(report: &Report, version: &str) -> Sarif {
    let rules: Vec<ReportingDescriptor> = RuleId::ALL
        .iter()
        .map(|rule| {
            ReportingDescriptor::builder()
                .id(rule.id())
                .name(rule.name())
                .short_description(MultiformatMessageString::builder().text(rule.summary()).build())
                .help(MultiformatMessageString::builder().text(format!("Fix: {}", rule.fix())).build())
                .default_configuration(
                    ReportingConfiguration::builder()
                        .level(serde_json::to_value(default_level(rule.severity())).expect("levels serialize"))
                        .build(),
                )
                .build()
        })
        .collect();
    let results: Vec<SarifResult> = report
        .findings
        .iter()
        .map(|finding| {
            SarifResult::builder()
                .rule_id(finding.rule.id())
                .rule_index(finding.rule.index() as i64)
                .level(level(finding.severity))
                .message(Message::builder().text(format!("{} (fix: {})", finding.message, finding.fix)).build())
                .locations(vec![
                    Location::builder()
                        .physical_location(
                            PhysicalLocation::builder()
                                .artifact_location(ArtifactLocation::builder().uri(finding.path.clone()).build())
                                .region(Region::builder().start_line(finding.line as i64).build())
                                .build(),
                        )
                        .build(),
                ])
                .build()
        })
        .collect();
    let driver = ToolComponent::builder()
        .name("pgbin-audit")
        .version(version)
        .information_uri("urn:pgbin:audit")
        .rules(rules)
        .build();
    Sarif::builder()
        .schema("https://json.schemastore.org/sarif-2.1.0.json")
        .version(serde_json::json!("2.1.0"))
        .runs(vec![Run::builder().tool(Tool::builder().driver(driver).build()).results(results).build()])
        .build()
}
