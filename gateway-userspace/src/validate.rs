//! `gateway validate`: print every finding; exit 0 clean, 1 on errors, 2 when
//! the input cannot be read.

use std::{io::Write, process::ExitCode};

use crate::{
    cli::{OutputFormat, ValidateArgs},
    config,
};

pub fn validate(args: &ValidateArgs) -> ExitCode {
    let loaded = match load(args) {
        Ok(l) => l,
        Err(e) => {
            eprintln!("error: {e:#}");
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

/// The files, and with `--kubernetes` every Istio resource and Service the
/// cluster holds, judged together.
fn load(args: &ValidateArgs) -> anyhow::Result<config::Loaded> {
    let opts = args.config.load_options();
    if !args.kubernetes {
        return Ok(config::load(&args.paths, &opts)?);
    }
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    let documents = rt.block_on(async {
        let client = crate::kubernetes::client::connect(args.kubeconfig.as_deref()).await?;
        crate::kubernetes::cluster_config::list_documents(&client, &args.cluster_domain).await
    })?;
    Ok(config::api_documents::load_all(&args.paths, &documents, &opts)?)
}
