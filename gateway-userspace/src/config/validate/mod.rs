//! Checks that need more than one field: TLS files on disk, duplicate
//! resources and references between resources.

mod client_tls;
mod gateways;
mod references;
mod service_entries;
mod sidecars;
mod tls_files;
mod virtual_services;

#[cfg(test)]
mod tests;

use super::LoadOptions;
use super::findings::{Code, Finding, finding};
use super::resources::Decoded;
use std::collections::BTreeMap;

/// Runs every cross-field check over the decoded documents.
pub(crate) fn run(decoded: &mut [Decoded], opts: &LoadOptions, findings: &mut Vec<Finding>) {
    duplicates(decoded, findings);
    tls_files::check(decoded, opts.credential_dir.as_deref(), findings);
    references::check(decoded, &opts.instance_labels, findings);
    sidecars::check(decoded, findings);
    service_entries::check(decoded, findings);
    client_tls::check(decoded, findings);
    virtual_services::check(decoded, findings);
}

fn duplicates(decoded: &[Decoded], findings: &mut Vec<Finding>) {
    let mut first: BTreeMap<_, &Decoded> = BTreeMap::new();
    for d in decoded {
        match first.get(&d.reference) {
            None => {
                first.insert(d.reference.clone(), d);
            }
            Some(f) => {
                let msg = format!(
                    "{} is already defined at {}:{}; remove one of the two or rename it",
                    d.reference,
                    f.file.display(),
                    f.doc_pos.line
                );
                let field = "metadata.name";
                findings.push(finding(
                    Code::DuplicateResource,
                    &d.file,
                    d.pos_of(field),
                    Some(&d.reference),
                    field,
                    msg,
                ));
            }
        }
    }
}
