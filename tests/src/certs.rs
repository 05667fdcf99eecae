//! A throw-away certificate authority and server certificates it signs, made with the openssl CLI.

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::command::{self, SHORT};
use crate::prereq::tool;

/// The files of a test CA and of a server certificate it signed.
pub struct TestCerts {
    pub ca_cert: PathBuf,
    pub server_cert: PathBuf,
    pub server_key: PathBuf,
}

/// Generates into `dir` a CA and a certificate for `server_name` (as subjectAltName DNS name).
pub fn generate(dir: &Path, server_name: &str) -> TestCerts {
    let file = |name: &str| dir.join(name);
    let openssl = |args: &[&str]| {
        command::run_ok(
            Command::new(tool("openssl")).args(args).current_dir(dir),
            SHORT,
        );
    };
    let ec_key = [
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:prime256v1",
        "-nodes",
    ];

    openssl(
        &[
            &["req", "-x509"][..],
            &ec_key,
            &[
                "-keyout",
                "ca.key",
                "-out",
                "ca.pem",
                "-days",
                "2",
                "-subj",
                "/CN=gateway test CA",
            ],
            &[
                "-addext",
                "basicConstraints=critical,CA:TRUE",
                "-addext",
                "keyUsage=critical,keyCertSign,cRLSign",
            ],
        ]
        .concat(),
    );
    sign(dir, "server", server_name, &format!("/CN={server_name}"));

    TestCerts {
        ca_cert: file("ca.pem"),
        server_cert: file("server.pem"),
        server_key: file("server.key"),
    }
}

/// Another certificate for `server_name`, signed by the CA that [`generate`] made in `dir`, with
/// `subject` (e.g. `/CN=hello.test/O=rotated`) and a new key: `<stem>.pem` and `<stem>.key`.
pub fn reissue(dir: &Path, stem: &str, server_name: &str, subject: &str) -> (PathBuf, PathBuf) {
    sign(dir, stem, server_name, subject);
    (dir.join(format!("{stem}.pem")), dir.join(format!("{stem}.key")))
}

/// The serial number of a PEM certificate, as openssl prints it (hex, upper case).
pub fn serial(cert: &Path) -> String {
    let out = command::run_ok(Command::new(tool("openssl")).args(["x509", "-noout", "-serial", "-in"]).arg(cert), SHORT);
    let text = out.trim();
    text.strip_prefix("serial=").unwrap_or_else(|| panic!("no serial in {text:?}")).to_string()
}

/// A key and a certificate for `server_name` signed by `dir/ca.pem`: `<stem>.key`, `<stem>.pem`.
fn sign(dir: &Path, stem: &str, server_name: &str, subject: &str) {
    let openssl = |args: &[&str]| {
        command::run_ok(
            Command::new(tool("openssl")).args(args).current_dir(dir),
            SHORT,
        );
    };
    let (key, csr, pem, ext) = (format!("{stem}.key"), format!("{stem}.csr"), format!("{stem}.pem"), format!("{stem}.ext"));
    openssl(&[
        "req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes", "-keyout", &key, "-out", &csr, "-subj", subject,
    ]);
    let extensions = format!(
        "subjectAltName=DNS:{server_name}\nbasicConstraints=CA:FALSE\nkeyUsage=digitalSignature\nextendedKeyUsage=serverAuth\n"
    );
    std::fs::write(dir.join(&ext), extensions)
        .unwrap_or_else(|e| panic!("cannot write {ext} in {}: {e}", dir.display()));
    openssl(&[
        "x509", "-req", "-in", &csr, "-CA", "ca.pem", "-CAkey", "ca.key", "-CAcreateserial", "-out", &pem, "-days", "2", "-extfile", &ext,
    ]);
}

/// A mesh PKI from `gateway certs`, the real command, into `dir`: `ca.crt` and one
/// `<namespace>-<serviceaccount>.crt|.key` pair per `NAMESPACE/SERVICEACCOUNT` in `workloads`.
pub fn mesh_certs(dir: &Path, workloads: &[&str]) {
    let mut cmd = Command::new(crate::gateway_process::gateway_bin());
    cmd.arg("certs").arg("--out").arg(dir);
    for w in workloads {
        cmd.args(["--workload", w]);
    }
    let out = cmd.output().expect("gateway certs");
    assert!(out.status.success(), "gateway certs: {}", String::from_utf8_lossy(&out.stderr));
}
