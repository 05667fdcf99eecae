//! `gateway validate`: print every finding; exit 0 clean, 1 on errors, 2 when
//! the input cannot be read.

use std::{io::Write, process::ExitCode};

use crate::{
    cli::{OutputFormat, ValidateArgs},
    config,
};

pub fn validate(args: &ValidateArgs) -> ExitCode {
    let loaded = match config::load(&args.paths, &args.config.load_options()) {
        Ok(l) => l,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::from(2);
        }
    };
    let errors = loaded.findings.iter().filter(|f| f.severity == crate::config::Severity::Error).count();
    let warnings = loaded.findings.len() - errors;
    // A closed stdout (`| head`) ends the output, never the process with a panic.
    let mut out = std::io::stdout().lock();
    let _ = match args.output {
        OutputFormat::Text => loaded
            .findings
            .iter()
            .try_for_each(|f| writeln!(out, "{f}"))
            .and_then(|()| writeln!(out, "{errors} error(s), {warnings} warning(s)")),
        OutputFormat::Json => {
            let doc = serde_json::json!({ "findings": loaded.findings, "errors": errors, "warnings": warnings });
            writeln!(out, "{doc:#}")
        }
    };
    if errors > 0 { ExitCode::from(1) } else { ExitCode::SUCCESS }
}
