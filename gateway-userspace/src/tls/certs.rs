//! A small test PKI, for trying the gateway without an external one: a CA,
//! and leaf certificates it signs (SPIFFE workload identities and plain
//! server certificates). Keys are ECDSA P-256 in PKCS#8 PEM, readable by
//! the owner only.

use std::{
    fs,
    io::Write,
    net::IpAddr,
    os::unix::fs::OpenOptionsExt,
    path::{Path, PathBuf},
};

use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa,
    Issuer, KeyPair, KeyUsagePurpose, SanType,
};
use time::{Duration, OffsetDateTime};

use super::{SpiffeId, TlsError, pem::load_identity};

const CA_VALIDITY: Duration = Duration::days(10 * 365);
const LEAF_VALIDITY: Duration = Duration::days(365);
/// Room for clocks running a little behind the issuer's.
const BACKDATE: Duration = Duration::hours(1);

/// The files of a CA: `ca.crt` (self-signed certificate) and `ca.key`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CaFiles {
    pub cert: PathBuf,
    pub key: PathBuf,
}

impl CaFiles {
    /// Where [`generate_ca`] writes the CA in `dir`.
    pub fn in_dir(dir: &Path) -> Self {
        Self {
            cert: dir.join("ca.crt"),
            key: dir.join("ca.key"),
        }
    }

    /// Whether both files are present.
    pub fn exist(&self) -> bool {
        self.cert.is_file() && self.key.is_file()
    }
}

/// One certificate to issue.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct IssueRequest {
    /// File stem: `<name>.crt` and `<name>.key`.
    pub name: String,
    /// DNS SANs; the first is also the subject's common name.
    pub dns_names: Vec<String>,
    /// IP address SANs.
    pub ip_addresses: Vec<IpAddr>,
    /// The workload identity, as a URI SAN.
    pub spiffe: Option<SpiffeId>,
    /// Usable as a TLS client certificate.
    pub client: bool,
    /// Usable as a TLS server certificate.
    pub server: bool,
}

/// The files of an issued certificate. `cert` holds the leaf certificate
/// only, not the CA: peers are expected to trust `ca.crt` itself.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IssuedFiles {
    pub cert: PathBuf,
    pub key: PathBuf,
}

/// Generates a CA in `dir` (created when missing), overwriting any
/// `ca.crt` and `ca.key` there.
pub fn generate_ca(dir: &Path, common_name: &str) -> Result<CaFiles, TlsError> {
    if common_name.trim().is_empty() {
        return Err(TlsError::Settings("the CA needs a common name".into()));
    }
    let now = OffsetDateTime::now_utc();
    let mut params = CertificateParams::default();
    params.distinguished_name = common_name_dn(common_name);
    params.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
    params.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    params.not_before = now - BACKDATE;
    params.not_after = now + CA_VALIDITY;
    let key = KeyPair::generate()?;
    let cert = params.self_signed(&key)?;

    create_dir(dir)?;
    let files = CaFiles::in_dir(dir);
    write_file(&files.key, key.serialize_pem().as_bytes(), 0o600)?;
    write_file(&files.cert, cert.pem().as_bytes(), 0o644)?;
    Ok(files)
}

/// Issues one certificate signed by `ca` into `dir` (created when missing).
pub fn issue(ca: &CaFiles, dir: &Path, req: &IssueRequest) -> Result<IssuedFiles, TlsError> {
    check_name(&req.name)?;
    let params = leaf_params(req, OffsetDateTime::now_utc())?;

    // The CA key must be the CA certificate's, or nothing issued would verify.
    load_identity(&ca.cert, &ca.key)?;
    let ca_pem = read_text(&ca.cert)?;
    let ca_key = KeyPair::from_pem(&read_text(&ca.key)?)?;
    let issuer = Issuer::from_ca_cert_pem(&ca_pem, ca_key)?;

    let key = KeyPair::generate()?;
    let cert = params.signed_by(&key, &issuer)?;
    create_dir(dir)?;
    let files = IssuedFiles {
        cert: dir.join(format!("{}.crt", req.name)),
        key: dir.join(format!("{}.key", req.name)),
    };
    write_file(&files.key, key.serialize_pem().as_bytes(), 0o600)?;
    write_file(&files.cert, cert.pem().as_bytes(), 0o644)?;
    Ok(files)
}

/// The certificate parameters of a request, valid from `now`.
fn leaf_params(req: &IssueRequest, now: OffsetDateTime) -> Result<CertificateParams, TlsError> {
    if !req.client && !req.server {
        return Err(TlsError::Settings(format!(
            "certificate {:?} would be usable neither as client nor as server",
            req.name
        )));
    }
    let mut sans = Vec::new();
    for dns in &req.dns_names {
        let ia5 = dns.as_str().try_into().map_err(|_| {
            TlsError::Settings(format!("{dns:?} is not a DNS name for a certificate"))
        })?;
        sans.push(SanType::DnsName(ia5));
    }
    sans.extend(req.ip_addresses.iter().copied().map(SanType::IpAddress));
    if let Some(id) = &req.spiffe {
        let uri = id.uri();
        let ia5 = uri.as_str().try_into().map_err(|_| {
            TlsError::Settings(format!("{uri:?} cannot be written in a certificate"))
        })?;
        sans.push(SanType::URI(ia5));
    }
    if sans.is_empty() {
        return Err(TlsError::Settings(format!(
            "certificate {:?} needs a DNS name, an IP address or a SPIFFE id",
            req.name
        )));
    }

    let mut params = CertificateParams::default();
    params.distinguished_name = common_name_dn(req.dns_names.first().unwrap_or(&req.name));
    params.subject_alt_names = sans;
    params.is_ca = IsCa::ExplicitNoCa;
    params.key_usages = vec![
        KeyUsagePurpose::DigitalSignature,
        KeyUsagePurpose::KeyEncipherment,
    ];
    if req.server {
        params
            .extended_key_usages
            .push(ExtendedKeyUsagePurpose::ServerAuth);
    }
    if req.client {
        params
            .extended_key_usages
            .push(ExtendedKeyUsagePurpose::ClientAuth);
    }
    params.use_authority_key_identifier_extension = true;
    params.not_before = now - BACKDATE;
    params.not_after = now + LEAF_VALIDITY;
    Ok(params)
}

/// A file stem that stays inside the output directory and is not the CA's.
fn check_name(name: &str) -> Result<(), TlsError> {
    let allowed = |c: char| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_');
    if name.is_empty() || name.starts_with('.') || !name.chars().all(allowed) {
        return Err(TlsError::Settings(format!(
            "certificate name {name:?} must be letters, digits, '.', '-' or '_', \
             not starting with '.'"
        )));
    }
    if name == "ca" {
        return Err(TlsError::Settings(
            "certificate name \"ca\" is the CA's own".into(),
        ));
    }
    Ok(())
}

fn common_name_dn(common_name: &str) -> DistinguishedName {
    let mut dn = DistinguishedName::new();
    dn.push(DnType::CommonName, common_name);
    dn
}

fn create_dir(dir: &Path) -> Result<(), TlsError> {
    fs::create_dir_all(dir).map_err(|source| TlsError::Write {
        path: dir.to_path_buf(),
        source,
    })
}

fn read_text(path: &Path) -> Result<String, TlsError> {
    fs::read_to_string(path).map_err(|source| TlsError::Read {
        path: path.to_path_buf(),
        source,
    })
}

/// Writes through a temporary file renamed into place, so a reader never
/// sees half a file and a key is never readable by others, even briefly.
fn write_file(path: &Path, contents: &[u8], mode: u32) -> Result<(), TlsError> {
    let fail = |source| TlsError::Write {
        path: path.to_path_buf(),
        source,
    };
    let mut tmp = path.as_os_str().to_owned();
    tmp.push(".tmp");
    let tmp = PathBuf::from(tmp);
    let _ = fs::remove_file(&tmp);
    let mut file = fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(mode)
        .open(&tmp)
        .map_err(fail)?;
    file.write_all(contents).map_err(fail)?;
    file.sync_all().map_err(fail)?;
    fs::rename(&tmp, path).map_err(fail)
}
