//! A throw-away certificate authority and one server certificate, made with the openssl CLI.

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
    openssl(
        &[
            &["req"][..],
            &ec_key,
            &[
                "-keyout",
                "server.key",
                "-out",
                "server.csr",
                "-subj",
                &format!("/CN={server_name}"),
            ],
        ]
        .concat(),
    );
    let extensions = format!(
        "subjectAltName=DNS:{server_name}\nbasicConstraints=CA:FALSE\nkeyUsage=digitalSignature\nextendedKeyUsage=serverAuth\n"
    );
    std::fs::write(file("server.ext"), extensions)
        .unwrap_or_else(|e| panic!("cannot write server.ext in {}: {e}", dir.display()));
    openssl(&[
        "x509",
        "-req",
        "-in",
        "server.csr",
        "-CA",
        "ca.pem",
        "-CAkey",
        "ca.key",
        "-CAcreateserial",
        "-out",
        "server.pem",
        "-days",
        "2",
        "-extfile",
        "server.ext",
    ]);

    TestCerts {
        ca_cert: file("ca.pem"),
        server_cert: file("server.pem"),
        server_key: file("server.key"),
    }
}
