//! Checks that TLS-terminating Gateway servers have certificate material
//! and that the files exist and parse.

use crate::config::findings::{Code, Finding, finding};
use crate::config::resources::gateway::{ServerTls, TlsFiles};
use crate::config::resources::{Decoded, Resource};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use std::path::Path;

/// What a file must hold.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(super) enum Material {
    Certificates,
    PrivateKey,
}

/// Checks every terminating server of every Gateway, and records the files
/// it will use in `tls.files`.
pub(crate) fn check(
    decoded: &mut [Decoded],
    credential_dir: Option<&Path>,
    findings: &mut Vec<Finding>,
) {
    for d in decoded.iter_mut() {
        let mut resource = d.resource.take();
        check_gateway(d, &mut resource, credential_dir, findings);
        d.resource = resource;
    }
}

fn check_gateway(
    d: &Decoded,
    resource: &mut Option<Resource>,
    credential_dir: Option<&Path>,
    findings: &mut Vec<Finding>,
) {
    let Some(Resource::Gateway(gw)) = resource else {
        return;
    };
    for (i, server) in gw.servers.iter_mut().enumerate() {
        let Some(tls) = &mut server.tls else { continue };
        if !tls.mode.terminates() {
            continue;
        }
        let base = format!("spec.servers[{i}].tls");
        let mut report = |code: Code, field: &str, msg: String| {
            let path = format!("{base}{field}");
            findings.push(finding(
                code,
                &d.file,
                d.pos_of(&path),
                Some(&d.reference),
                &path,
                msg,
            ));
        };
        tls.files = resolve(tls, credential_dir, &mut report);
    }
}

fn resolve(
    tls: &ServerTls,
    credential_dir: Option<&Path>,
    report: &mut impl FnMut(Code, &str, String),
) -> Option<TlsFiles> {
    let mode = tls.mode.as_str();
    let from_files = tls.server_certificate.is_some() || tls.private_key.is_some();
    let files = if let (Some(name), false) = (&tls.credential_name, from_files) {
        let Some(dir) = credential_dir else {
            let msg = format!(
                "credentialName `{name}` cannot be checked or loaded without a credential directory; \
                 set one or give serverCertificate and privateKey"
            );
            report(Code::TlsCredentialUnchecked, ".credentialName", msg);
            return None;
        };
        let base = dir.join(name);
        let ca = base.join("ca.crt");
        let ca = (tls.mode.verifies_clients() || ca.exists()).then_some(ca);
        TlsFiles {
            certificate: base.join("tls.crt"),
            private_key: base.join("tls.key"),
            ca_certificates: ca,
            contents: [0; 32],
        }
    } else {
        let (cert, key) = match (&tls.server_certificate, &tls.private_key) {
            (Some(c), Some(k)) => (c.clone(), k.clone()),
            (Some(_), None) => {
                let msg =
                    format!("{mode} TLS has serverCertificate but no privateKey; add the key file");
                report(Code::TlsMissingMaterial, ".privateKey", msg);
                return None;
            }
            (None, Some(_)) => {
                let msg = format!(
                    "{mode} TLS has privateKey but no serverCertificate; add the certificate file"
                );
                report(Code::TlsMissingMaterial, ".serverCertificate", msg);
                return None;
            }
            (None, None) => {
                let msg = format!(
                    "{mode} TLS needs serverCertificate and privateKey files, or credentialName"
                );
                report(Code::TlsMissingMaterial, ".mode", msg);
                return None;
            }
        };
        TlsFiles {
            certificate: cert,
            private_key: key,
            ca_certificates: tls.ca_certificates.clone(),
            contents: [0; 32],
        }
    };
    let via = if tls.credential_name.is_some() && !from_files {
        ".credentialName"
    } else {
        ""
    };
    let cert_field = if via.is_empty() {
        ".serverCertificate"
    } else {
        via
    };
    let key_field = if via.is_empty() { ".privateKey" } else { via };
    let cert = check_file(&files.certificate, Material::Certificates, cert_field, report);
    let key = check_file(&files.private_key, Material::PrivateKey, key_field, report);
    let ca = match &files.ca_certificates {
        Some(ca) => {
            let ca_field = if via.is_empty() {
                ".caCertificates"
            } else {
                via
            };
            check_file(ca, Material::Certificates, ca_field, report).map(Some)
        }
        None if tls.mode.verifies_clients() => {
            let msg = format!(
                "{mode} TLS verifies clients and needs caCertificates; add a CA bundle file"
            );
            report(Code::TlsMissingMaterial, ".caCertificates", msg);
            None
        }
        None => Some(None),
    };
    let (cert, key, ca) = (cert?, key?, ca?);
    Some(TlsFiles {
        contents: digest(&[&cert[..], &key[..], ca.as_deref().unwrap_or_default()]),
        ..files
    })
}

/// SHA-256 over each file's length and bytes, in order.
pub(super) fn digest(files: &[&[u8]]) -> [u8; 32] {
    let mut ctx = ring::digest::Context::new(&ring::digest::SHA256);
    for bytes in files {
        ctx.update(&(bytes.len() as u64).to_be_bytes());
        ctx.update(bytes);
    }
    let mut out = [0; 32];
    out.copy_from_slice(ctx.finish().as_ref());
    out
}

/// The file's bytes, if it holds the expected material; else reported.
fn check_file(
    path: &Path,
    what: Material,
    field: &str,
    report: &mut impl FnMut(Code, &str, String),
) -> Option<Vec<u8>> {
    let bytes = match std::fs::read(path) {
        Ok(b) => b,
        Err(e) => {
            let msg = format!(
                "cannot read `{}` ({e}); relative paths are resolved against the YAML file's directory",
                path.display()
            );
            report(Code::TlsFileUnreadable, field, msg);
            return None;
        }
    };
    match parse_problem(&bytes, what) {
        None => Some(bytes),
        Some(problem) => {
            report(
                Code::TlsFileInvalid,
                field,
                format!("`{}` {problem}", path.display()),
            );
            None
        }
    }
}

/// Why `bytes` does not hold the expected PEM material, if it does not.
pub(super) fn parse_problem(bytes: &[u8], what: Material) -> Option<String> {
    match what {
        Material::PrivateKey => match PrivateKeyDer::from_pem_slice(bytes) {
            Ok(_) => None,
            Err(e) => Some(format!(
                "holds no readable PEM private key ({e:?}); give a PKCS#8, PKCS#1 or SEC1 key"
            )),
        },
        Material::Certificates => {
            let mut count = 0;
            for item in CertificateDer::pem_slice_iter(bytes) {
                let der = match item {
                    Ok(der) => der,
                    Err(e) => return Some(format!("has a PEM block that cannot be read ({e:?})")),
                };
                if let Err(e) = x509_parser::parse_x509_certificate(der.as_ref()) {
                    return Some(format!(
                        "has a certificate that does not parse as X.509 ({e})"
                    ));
                }
                count += 1;
            }
            (count == 0).then(|| {
                "holds no PEM `CERTIFICATE` block; give a PEM certificate file".to_string()
            })
        }
    }
}
