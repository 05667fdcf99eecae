//! What the workload certificate tests share: a running `gateway ca`, CSRs
//! created with a node's (or a workload's) token through kube-rs, and the
//! checks of an issued certificate with openssl.

use std::fs::File;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use gateway_tests::gateway_process::gateway_bin;
use gateway_tests::kube_api::ApiServer;
use gateway_tests::names;
use gateway_tests::netns::NetNs;
use gateway_tests::temp_dir::TempDir;
use gateway_tests::wait;
use gateway_userspace::kubernetes::rbac::ApiCall;
use k8s_openapi::api::certificates::v1::CertificateSigningRequest;
use kube::api::PostParams;
use kube::config::{KubeConfigOptions, Kubeconfig};
use kube::{Api, Client, Config};
use serde_json::{Value, json};

pub const SIGNER: &str = gateway_userspace::workload_ca::SIGNER_NAME;
pub const AGENT_NS: &str = "gateway-system";
pub const AGENT_SA: &str = "gateway-node";
pub const CA_SA: &str = "gateway-ca";
/// A bound on every wait.
pub const PATIENCE: Duration = Duration::from_secs(60);

/// `gateway ca` with a fresh CA, authenticated as `gateway-system/gateway-ca`.
pub struct WorkloadCa {
    child: Child,
    dir: TempDir,
    pub ca_pem: String,
}

impl WorkloadCa {
    /// Starts it in `netns` (where the API server listens) or here; `extra` flags last.
    pub fn start(api: &ApiServer, netns: Option<&NetNs>, extra: &[&str]) -> WorkloadCa {
        let dir = TempDir::create(&format!("{}-workload-ca", names::unique_tag()));
        let ca = gateway_userspace::tls::generate_ca(dir.path(), "mesh CA").expect("a test CA");
        let kubeconfig = api.kubeconfig_for_service_account(AGENT_NS, CA_SA, None);
        let mut command = match netns {
            Some(ns) => {
                let mut c = Command::new("nsenter");
                c.arg(format!("--net={}", ns.path().display())).arg(gateway_bin());
                c
            }
            None => Command::new(gateway_bin()),
        };
        let log = File::create(dir.path().join("ca.log")).expect("the CA's log file");
        let path = |p: &Path| p.to_string_lossy().into_owned();
        command
            .args(["ca", "--kubeconfig", &path(&kubeconfig), "--ca-cert", &path(&ca.cert), "--ca-key", &path(&ca.key)])
            .args(["--namespace", AGENT_NS, "--pod-wait-secs", "2"])
            .args(extra)
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("log"))
            .stderr(log);
        let child = command.spawn().unwrap_or_else(|e| panic!("cannot start gateway ca: {e}"));
        let ca_pem = std::fs::read_to_string(&ca.cert).expect("the CA certificate");
        WorkloadCa { child, dir, ca_pem }
    }

    /// The CA's files, to issue other certificates from it in a test.
    pub fn files(&self) -> gateway_userspace::tls::CaFiles {
        gateway_userspace::tls::CaFiles::in_dir(self.dir.path())
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("ca.log")).unwrap_or_default()
    }

    /// The CSR once it has a certificate, or a Denied or Failed condition.
    pub fn wait_concluded(&self, api: &ApiServer, name: &str) -> Value {
        wait::poll(PATIENCE, Duration::from_millis(50), || {
            let csr = api.csrs().into_iter().find(|c| c["metadata"]["name"] == name)?;
            let conditions = csr["status"]["conditions"].as_array().cloned().unwrap_or_default();
            let ended = conditions.iter().any(|c| c["type"] == "Denied" || c["type"] == "Failed");
            (ended || certificate(&csr).is_some()).then_some(csr)
        })
        .unwrap_or_else(|| panic!("CSR {name} was not concluded\nCA log:\n{}", self.log()))
    }
}

impl Drop for WorkloadCa {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A pod of `sa` scheduled on `node`, running.
pub fn pod_on(ns: &str, name: &str, sa: &str, node: &str) -> Value {
    json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name, "namespace": ns},
           "spec": {"nodeName": node, "serviceAccountName": sa, "containers": [{"name": "app", "image": "app"}]},
           "status": {"phase": "Running"}})
}

/// Creates CSR `name` for `uri` with the token of `kubeconfig`. The body
/// claims another requester, which the API server must overwrite.
pub fn create_csr(kubeconfig: &Path, name: &str, uri: &str, signer: &str, expiration: Option<i32>) {
    let key = rcgen::KeyPair::generate().unwrap();
    let mut params = rcgen::CertificateParams::default();
    params.subject_alt_names = vec![rcgen::SanType::URI(uri.try_into().unwrap())];
    let request = params.serialize_request(&key).unwrap().pem().unwrap();
    let csr: CertificateSigningRequest = serde_json::from_value(json!({
        "metadata": {"name": name},
        "spec": {"request": base64(request.as_bytes()), "signerName": signer, "usages": ["client auth", "digital signature"],
                 "expirationSeconds": expiration, "username": "system:serviceaccount:kube-system:admin",
                 "extra": {"authentication.kubernetes.io/node-name": ["node-2"]}}
    }))
    .unwrap();
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    runtime.block_on(async {
        let config = Kubeconfig::read_from(kubeconfig).unwrap();
        let config = Config::from_custom_kubeconfig(config, &KubeConfigOptions::default()).await.unwrap();
        let api: Api<CertificateSigningRequest> = Api::all(Client::try_from(config).unwrap());
        api.create(&PostParams::default(), &csr).await.unwrap_or_else(|e| panic!("creating CSR {name}: {e}"));
    });
}

/// `status.certificate`, decoded.
pub fn certificate(csr: &Value) -> Option<String> {
    use base64::Engine;
    let b64 = csr["status"]["certificate"].as_str().filter(|c| !c.is_empty())?;
    String::from_utf8(base64::engine::general_purpose::STANDARD.decode(b64).ok()?).ok()
}

fn base64(bytes: &[u8]) -> String {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

/// The type and reason of the CSR's first condition.
pub fn condition(csr: &Value) -> Option<(String, String)> {
    let c = csr["status"]["conditions"].get(0)?;
    Some((c["type"].as_str()?.to_string(), c["reason"].as_str()?.to_string()))
}

/// openssl: the chain's leaf verifies against `ca_pem` as a TLS client
/// certificate and names exactly `uri`.
pub fn openssl_check(ca_pem: &str, chain: &str, uri: &str) {
    let dir = TempDir::create(&format!("{}-issued", names::unique_tag()));
    std::fs::write(dir.path().join("ca.pem"), ca_pem).unwrap();
    std::fs::write(dir.path().join("chain.pem"), chain).unwrap();
    let run = |args: &[&str]| {
        let out = Command::new("openssl").args(args).current_dir(dir.path()).output().expect("openssl runs");
        assert!(out.status.success(), "openssl {args:?}: {}", String::from_utf8_lossy(&out.stderr));
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    run(&["verify", "-CAfile", "ca.pem", "-purpose", "sslclient", "chain.pem"]);
    let sans = run(&["x509", "-in", "chain.pem", "-noout", "-ext", "subjectAltName"]);
    let names: Vec<&str> = sans.lines().skip(1).flat_map(|l| l.split(',')).map(str::trim).collect();
    assert_eq!(names, [format!("URI:{uri}")], "{sans}");
}

/// The serial number of a PEM certificate (the first of a chain), as openssl prints it.
pub fn serial(pem: &str) -> String {
    let path = std::env::temp_dir().join(format!("{}-serial.pem", names::unique_tag()));
    std::fs::write(&path, pem).unwrap();
    let out = Command::new("openssl").args(["x509", "-noout", "-serial", "-in"]).arg(&path).output().expect("openssl");
    let _ = std::fs::remove_file(&path);
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

/// The key file's public key is the certificate's.
pub fn assert_key_matches(key: &Path, chain: &str) {
    let pem = std::fs::read_to_string(key).expect("the key file");
    let key = rcgen::KeyPair::from_pem(&pem).expect("a PEM key");
    let leaf: PathBuf = std::env::temp_dir().join(format!("{}-leaf.pem", names::unique_tag()));
    std::fs::write(&leaf, chain).unwrap();
    let out = Command::new("openssl").args(["x509", "-noout", "-pubkey", "-in"]).arg(&leaf).output().expect("openssl");
    let _ = std::fs::remove_file(&leaf);
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), key.public_key_pem().trim(), "the certificate is for the key written");
}

pub fn assert_owner_only(path: &Path) {
    let mode = std::fs::metadata(path).expect("the file").permissions().mode() & 0o777;
    assert_eq!(mode, 0o600, "{}", path.display());
}

/// Every call made with `service_account`'s tokens is one of `tables` grants.
pub fn assert_calls_within(api: &ApiServer, service_account: &str, tables: &[&[ApiCall]]) {
    let user = format!("system:serviceaccount:{AGENT_NS}:{service_account}");
    let calls: Vec<_> = api.requests().into_iter().filter(|c| c.user == user && c.is_resource()).collect();
    assert!(!calls.is_empty(), "{user} made calls");
    for call in calls {
        let resource = call.rbac_resource();
        let granted = tables.iter().flat_map(|t| t.iter()).any(|g| {
            g.group == call.group && g.resource == resource && g.verbs.contains(&call.verb.as_str())
        });
        assert!(granted, "{user}: not granted: {} {}/{} ({})", call.verb, call.group, resource, call.path);
    }
}
