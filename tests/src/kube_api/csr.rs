//! CertificateSigningRequests from the test side: list them, approve one as `kubectl certificate
//! approve` does, and sign an approved one with the server's CA as a signer controller would.
//! Clients may also approve through the API (`PUT`/`PATCH …/approval`).

use std::time::Duration;

use serde_json::{Value, json};

use super::server::ApiServer;
use super::status::ApiError;
use super::store::{Part, now_rfc3339};
use super::tls;

const CSR_API: &str = "certificates.k8s.io/v1";
const CSR_KIND: &str = "CertificateSigningRequest";
/// What a signer issues when the request names no `expirationSeconds`.
const DEFAULT_VALIDITY: Duration = Duration::from_secs(24 * 3600);

impl ApiServer {
    /// Every CertificateSigningRequest.
    pub fn csrs(&self) -> Vec<Value> {
        self.list(CSR_API, CSR_KIND)
    }

    /// Adds the `Approved` condition. Panics when there is no such CSR.
    pub fn approve_csr(&self, name: &str) -> Value {
        self.modify_csr(name, |csr| {
            let now = now_rfc3339();
            let condition = json!({
                "type": "Approved", "status": "True", "reason": "ApprovedByTest",
                "message": "approved by the test", "lastUpdateTime": now, "lastTransitionTime": now,
            });
            if !csr["status"].is_object() {
                csr["status"] = json!({});
            }
            match csr["status"]["conditions"].as_array_mut() {
                Some(conditions) => conditions.push(condition),
                None => csr["status"]["conditions"] = json!([condition]),
            }
        })
    }

    /// Issues the certificate of an approved CSR with the server's CA (see
    /// [`ApiServer::ca_pem`]) into `status.certificate`, and returns it (PEM). Panics when the CSR
    /// is missing, not approved, or its request cannot be parsed.
    pub fn sign_csr(&self, name: &str) -> String {
        let mut issued = String::new();
        self.modify_csr(name, |csr| {
            let approved = csr["status"]["conditions"].as_array().is_some_and(|c| {
                c.iter()
                    .any(|c| c["type"] == "Approved" && c["status"] == "True")
            });
            assert!(approved, "CSR {name} is not approved: {csr}");
            let request = csr["spec"]["request"]
                .as_str()
                .and_then(tls::base64_decode)
                .and_then(|der| String::from_utf8(der).ok())
                .unwrap_or_else(|| panic!("CSR {name} has no readable spec.request"));
            let usages: Vec<String> = csr["spec"]["usages"]
                .as_array()
                .map(|u| {
                    u.iter()
                        .filter_map(Value::as_str)
                        .map(str::to_string)
                        .collect()
                })
                .unwrap_or_default();
            let validity = csr["spec"]["expirationSeconds"]
                .as_u64()
                .map_or(DEFAULT_VALIDITY, Duration::from_secs);
            issued = self
                .shared
                .tls
                .sign(&request, &usages, validity)
                .unwrap_or_else(|e| panic!("CSR {name}: {e}"));
            csr["status"]["certificate"] = json!(tls::base64_encode(issued.as_bytes()));
        });
        issued
    }

    /// Reads, changes and writes back one CSR under the store's lock.
    fn modify_csr(&self, name: &str, change: impl FnOnce(&mut Value)) -> Value {
        let rt = super::resources::by_kind(CSR_API, CSR_KIND).expect("CSRs are in the table");
        self.shared
            .write(|s| {
                let mut csr = s
                    .get(rt, "", name)
                    .cloned()
                    .ok_or_else(|| ApiError::not_found(rt, name))?;
                change(&mut csr);
                s.update(rt, csr, Part::Whole)
            })
            .unwrap_or_else(|e| panic!("updating CSR {name}: {e}"))
    }
}
