//! Secrets as credential files.

use std::{fs, sync::Arc};

use k8s_openapi::{ByteString, api::core::v1::Secret};
use serde_json::{Value, json};

use crate::kubernetes::credential_secrets::{Credential, credentials, write_all};

fn secret(name: &str, data: Value) -> Arc<Secret> {
    let data = data.as_object().unwrap().iter().map(|(k, v)| (k.clone(), ByteString(v.as_str().unwrap().into()))).collect();
    let mut secret: Secret = serde_json::from_value(json!({"metadata": {"name": name, "namespace": "gw"}})).unwrap();
    secret.data = Some(data);
    Arc::new(secret)
}

fn credential(cert: &str, key: &str, ca: Option<&str>) -> Credential {
    Credential { cert: Some(cert.into()), key: Some(key.into()), ca: ca.map(Into::into) }
}

#[test]
fn both_spellings_of_a_tls_secret_are_read() {
    let found = credentials(&[
        secret("api-cert", json!({"tls.crt": "C1", "tls.key": "K1", "ca.crt": "A1"})),
        secret("generic", json!({"cert": "C2", "key": "K2"})),
    ]);
    assert_eq!(found["api-cert"], credential("C1", "K1", Some("A1")));
    assert_eq!(found["generic"], credential("C2", "K2", None));
}

#[test]
fn a_cacert_secret_completes_its_credential() {
    let found = credentials(&[
        secret("mtls", json!({"tls.crt": "C", "tls.key": "K"})),
        secret("mtls-cacert", json!({"ca.crt": "A"})),
        secret("own-ca", json!({"tls.crt": "C", "tls.key": "K", "ca.crt": "MINE"})),
        secret("own-ca-cacert", json!({"cacert": "OTHER"})),
    ]);
    assert_eq!(found["mtls"], credential("C", "K", Some("A")));
    assert_eq!(found["own-ca"].ca.as_deref(), Some(&b"MINE"[..]), "a CA of its own wins");
}

#[test]
fn other_secrets_are_not_credentials() {
    let found = credentials(&[secret("token", json!({"token": "t"})), secret("half", json!({"tls.crt": "C"}))]);
    assert!(found.is_empty(), "{found:?}");
}

#[test]
fn files_follow_the_secrets_and_foreign_directories_stay() {
    let dir = std::env::temp_dir().join(format!("credential-secrets-{}", std::process::id()));
    let _ = fs::remove_dir_all(&dir);
    fs::create_dir_all(dir.join("hand-made")).unwrap();
    fs::write(dir.join("hand-made/tls.crt"), "H").unwrap();

    let first = credentials(&[secret("api", json!({"tls.crt": "C", "tls.key": "K", "ca.crt": "A"}))]);
    write_all(&dir, &first).unwrap();
    assert_eq!(fs::read(dir.join("api/tls.crt")).unwrap(), b"C");
    assert_eq!(fs::read(dir.join("api/ca.crt")).unwrap(), b"A");
    use std::os::unix::fs::PermissionsExt;
    assert_eq!(fs::metadata(dir.join("api/tls.key")).unwrap().permissions().mode() & 0o777, 0o600);

    // The CA removed from the Secret: its file goes too.
    let second = credentials(&[secret("api", json!({"tls.crt": "C2", "tls.key": "K2"}))]);
    write_all(&dir, &second).unwrap();
    assert_eq!(fs::read(dir.join("api/tls.crt")).unwrap(), b"C2");
    assert!(!dir.join("api/ca.crt").exists());

    // The Secret deleted: its directory goes; the one written by hand stays, and a
    // Secret of the same name does not overwrite it.
    let third = credentials(&[secret("hand-made", json!({"tls.crt": "S", "tls.key": "S"}))]);
    write_all(&dir, &third).unwrap();
    assert!(!dir.join("api").exists());
    assert_eq!(fs::read(dir.join("hand-made/tls.crt")).unwrap(), b"H");
    fs::remove_dir_all(&dir).unwrap();
}
