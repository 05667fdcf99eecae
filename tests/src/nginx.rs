//! nginx in the `internet` namespace: HTTP on port 80 and HTTPS on 443 (both families), with a
//! JSON access log recording who connected, to which address, with which Host and SNI. Under
//! [`FRAMING_PREFIX`] it answers in each framing HTTP/1.1 has (see [`FRAMING_FILE`]).

use std::net::{IpAddr, SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Stdio};
use std::time::Duration;

use serde_json::Value;

use crate::certs::TestCerts;
use crate::command;
use crate::netns::NetNs;
use crate::prereq::tool;
use crate::wait;

/// The body nginx answers every request with; `$host` follows it.
pub const BODY_PREFIX: &str = "gwt-nginx host=";

/// Paths under this answer in other framings:
/// - `gzip`: the text [`FRAMING_TEXT`] compressed on the fly, so chunked, with a trailer;
/// - `file.txt`: a static file of that text, with an `ETag` (HEAD, 304);
/// - `empty`: 204;
/// - `short-keepalive`: 200, then the connection is closed after 1 s idle;
/// - `close-after`: 200 and `Connection: close`.
pub const FRAMING_PREFIX: &str = "/gwt-framing/";
/// The text of `gzip` and `file.txt`, long enough to compress.
pub const FRAMING_TEXT: &str = "framed by nginx; framed by nginx; framed by nginx; framed by nginx.";
/// Where that file lies under the nginx prefix.
const FRAMING_FILE: &str = "html/file.txt";

/// One line of the access log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AccessLogEntry {
    pub remote_addr: IpAddr,
    pub server_addr: IpAddr,
    pub server_port: u16,
    pub host: String,
    /// `$ssl_server_name`: the SNI of a TLS connection, empty for plain HTTP.
    pub sni: String,
    pub status: u16,
    pub uri: String,
    /// nginx's serial number of the connection the request came on.
    pub connection: u64,
}

/// A running nginx, stopped (and its processes killed) on drop.
pub struct Nginx {
    child: Option<Child>,
    prefix: PathBuf,
}

impl Nginx {
    /// Starts nginx in the foreground inside `netns`, with its prefix directory under `dir`.
    /// Waits (bounded) until it accepts connections on `probe_addr`:80.
    pub fn start(netns: &NetNs, dir: &Path, certs: &TestCerts, probe_addr: IpAddr) -> Nginx {
        let prefix = dir.join("nginx");
        std::fs::create_dir_all(prefix.join("tmp"))
            .unwrap_or_else(|e| panic!("cannot create {}: {e}", prefix.display()));
        std::fs::create_dir_all(prefix.join("html")).expect("nginx html directory");
        std::fs::write(prefix.join(FRAMING_FILE), FRAMING_TEXT).expect("nginx file");
        let conf = prefix.join("nginx.conf");
        std::fs::write(&conf, config(&prefix, certs))
            .unwrap_or_else(|e| panic!("cannot write {}: {e}", conf.display()));
        let prefix_arg = format!("{}/", prefix.display());
        let conf_arg = conf.to_string_lossy().into_owned();
        let error_log = prefix.join("error.log").to_string_lossy().into_owned();
        let nginx = tool("nginx").to_string_lossy().into_owned();
        let args = [
            "-p",
            prefix_arg.as_str(),
            "-c",
            conf_arg.as_str(),
            "-e",
            error_log.as_str(),
        ];
        command::run_ok(
            &mut netns.command(&nginx, &[&args[..], &["-t"]].concat()),
            command::SHORT,
        );
        let child = netns
            .command(&nginx, &args)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start nginx: {e}"));
        let mut server = Nginx {
            child: Some(child),
            prefix,
        };
        let probe = SocketAddr::new(probe_addr, 80);
        let up = wait::poll(Duration::from_secs(10), Duration::from_millis(50), || {
            if let Some(Ok(Some(status))) = server.child.as_mut().map(Child::try_wait) {
                panic!("nginx exited early ({status}): {}", server.error_log());
            }
            netns
                .run_in(move || {
                    TcpStream::connect_timeout(&probe, Duration::from_millis(200)).is_ok()
                })
                .then_some(())
        });
        if up.is_none() {
            panic!(
                "nginx did not listen on {probe} within 10 s: {}",
                server.error_log()
            );
        }
        server
    }

    /// Every access log line written so far.
    pub fn access_log(&self) -> Vec<AccessLogEntry> {
        let path = self.prefix.join("access.log");
        let text = std::fs::read_to_string(&path).unwrap_or_default();
        text.lines()
            .filter(|l| !l.trim().is_empty())
            .map(|l| parse_entry(l, &path))
            .collect()
    }

    /// Waits until the access log has at least `n` lines; panics on timeout.
    pub fn wait_for_entries(&self, n: usize, timeout: Duration) -> Vec<AccessLogEntry> {
        wait::until(&format!("{n} lines in nginx's access log"), timeout, || {
            self.access_log().len() >= n
        });
        self.access_log()
    }

    pub fn error_log(&self) -> String {
        std::fs::read_to_string(self.prefix.join("error.log")).unwrap_or_default()
    }
}

impl Drop for Nginx {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            // SAFETY: kill has no memory-safety preconditions. SIGTERM: fast shutdown of all workers.
            unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
            if command::wait_bounded(&mut child, Duration::from_secs(5)).is_none() {
                eprintln!("nginx did not stop on SIGTERM; killed it");
            }
        }
    }
}

fn parse_entry(line: &str, path: &Path) -> AccessLogEntry {
    let v: Value = serde_json::from_str(line)
        .unwrap_or_else(|e| panic!("bad line in {} ({e}): {line}", path.display()));
    let text = |key: &str| v[key].as_str().unwrap_or_default().to_owned();
    let ip = |key: &str| {
        text(key)
            .parse()
            .unwrap_or_else(|e| panic!("bad {key} in nginx log ({e}): {line}"))
    };
    let number = |key: &str| -> u64 {
        text(key)
            .parse()
            .unwrap_or_else(|e| panic!("bad {key} in nginx log ({e}): {line}"))
    };
    let small = |key: &str| u16::try_from(number(key)).unwrap_or_else(|e| panic!("bad {key} in nginx log ({e}): {line}"));
    AccessLogEntry {
        remote_addr: ip("remote_addr"),
        server_addr: ip("server_addr"),
        server_port: small("server_port"),
        host: text("host"),
        sni: text("sni"),
        status: small("status"),
        uri: text("uri"),
        connection: number("connection"),
    }
}

fn config(prefix: &Path, certs: &TestCerts) -> String {
    let p = prefix.display();
    format!(
        r#"daemon off;
master_process on;
worker_processes 1;
pid {p}/nginx.pid;
error_log {p}/error.log info;
events {{ worker_connections 512; }}
http {{
    log_format gwt escape=json '{{"remote_addr":"$remote_addr","server_addr":"$server_addr","server_port":"$server_port","host":"$host","sni":"$ssl_server_name","status":"$status","uri":"$uri","connection":"$connection"}}';
    access_log {p}/access.log gwt;
    client_body_temp_path {p}/tmp/body;
    proxy_temp_path {p}/tmp/proxy;
    server {{
        listen 80;
        listen [::]:80;
        listen 443 ssl;
        listen [::]:443 ssl;
        server_name _;
        ssl_certificate {cert};
        ssl_certificate_key {key};
        location / {{
            default_type text/plain;
            return 200 "{BODY_PREFIX}$host\n";
        }}
        location = {FRAMING_PREFIX}gzip {{
            default_type text/plain;
            gzip on;
            gzip_types text/plain;
            gzip_min_length 1;
            add_trailer x-gwt-trailer done always;
            return 200 "{FRAMING_TEXT}";
        }}
        location = {FRAMING_PREFIX}file.txt {{
            alias {p}/{FRAMING_FILE};
        }}
        location = {FRAMING_PREFIX}empty {{
            return 204;
        }}
        location = {FRAMING_PREFIX}short-keepalive {{
            keepalive_timeout 1s;
            return 200 "short\n";
        }}
        location = {FRAMING_PREFIX}close-after {{
            keepalive_requests 1;
            return 200 "closing\n";
        }}
    }}
}}
"#,
        cert = certs.server_cert.display(),
        key = certs.server_key.display(),
    )
}
