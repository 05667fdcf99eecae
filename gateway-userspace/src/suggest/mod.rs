//! `gateway suggest`: from the audit log to the Istio resources that would
//! have allowed what was refused.
//!
//! `observed.rs` reads the JSON lines back (denied connections and requests,
//! grouped by the workload's namespace and destination), `live.rs` keeps the
//! same from the proxy's own records for the admin `/suggest`, `plan.rs` turns
//! them into ServiceEntries (and Sidecars when asked), `wildcard.rs` folds
//! subdomains where asked, `steering.rs` sends chosen hosts through an
//! egress gateway, and `emit.rs` writes the YAML. The output passes
//! `gateway validate` with no finding.

mod emit;
mod live;
mod observed;
mod plan;
mod steering;
mod wildcard;

#[cfg(test)]
mod tests;

use std::{
    io::{BufRead, BufReader, Read, Write},
    path::Path,
};

use anyhow::Context;

pub use emit::to_yaml;
pub use live::LiveRefusals;
pub use observed::{Destination, Observed, Seen, SeenProtocol};
pub use plan::{Plan, PlanOptions, plan};
pub use steering::EgressGateway;

use crate::cli::SuggestArgs;

/// Reads every `--from` log (`-` is standard input), prints the proposal.
pub fn suggest(args: &SuggestArgs) -> anyhow::Result<()> {
    let mut observed = Observed::default();
    for path in &args.from {
        read_log(path, args.namespace.as_deref(), &mut observed)?;
    }
    if observed.unreadable > 0 {
        tracing::warn!(lines = observed.lines, unreadable = observed.unreadable, "skipped lines that are not JSON");
    }
    let egress = (!args.egress_gateway.is_empty()).then(|| {
        let gw = EgressGateway::new(&args.egress_gateway_namespace, args.egress_gateway_selector.clone(), &args.cluster_domain);
        (gw, args.egress_gateway.iter().map(|h| h.to_ascii_lowercase()).collect())
    });
    let opts = PlanOptions { wildcard_min: args.wildcard_min.map_or(0, usize::from), sidecars: args.sidecars, egress };
    let text = render(&observed, &opts).context("writing the YAML")?;
    match &args.output {
        Some(path) => std::fs::write(path, text).with_context(|| format!("writing {}", path.display())),
        None => {
            // A closed stdout (`| head`) ends the output, never the process with a panic.
            let _ = std::io::stdout().lock().write_all(text.as_bytes());
            Ok(())
        }
    }
}

/// The proposal for what `observed` holds, as YAML under a comment that
/// sums it up: what `gateway suggest` prints and the admin `/suggest` serves.
pub fn render(observed: &Observed, opts: &PlanOptions) -> Result<String, serde_yaml::Error> {
    let proposal = plan(observed, opts);
    let yaml = to_yaml(&proposal)?;
    let mut header = format!(
        "# gateway suggest: {} denied call(s) in {} line(s); {} ServiceEntry(ies), {} Sidecar(s), {} egress gateway resource(s).\n",
        observed.refused(),
        observed.lines,
        proposal.entries.len(),
        proposal.sidecars.len(),
        proposal.steering.len()
    );
    if observed.dropped > 0 {
        header.push_str(&format!("# {} call(s) to further destinations were not kept (at most {}).\n", observed.dropped, observed.max_destinations));
    }
    Ok(format!("{header}{yaml}"))
}

fn read_log(path: &Path, namespace: Option<&str>, observed: &mut Observed) -> anyhow::Result<()> {
    let reader: Box<dyn Read> = if path == Path::new("-") {
        Box::new(std::io::stdin())
    } else {
        Box::new(std::fs::File::open(path).with_context(|| format!("opening {}", path.display()))?)
    };
    for line in BufReader::new(reader).split(b'\n') {
        let line = line.with_context(|| format!("reading {}", path.display()))?;
        observed.add_line(&String::from_utf8_lossy(&line), namespace);
    }
    Ok(())
}
