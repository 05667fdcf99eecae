//! A gateway's listeners as it reports them (`/config_dump`), and a client
//! that tells an open port from a refused one.

use std::process::Command;
use std::time::Duration;

use serde_json::Value;

use crate::command;
use crate::gateway_process::Gateway;
use crate::wait;

/// How long a published configuration may take to reach the listeners.
pub const CATCH_UP: Duration = Duration::from_secs(20);

/// Waits until the configuration's generation is at least `want` and the listeners have been
/// brought to it; returns the listeners' ports (`address`, `kind`, `gateways`, `state`, `error`).
pub fn caught_up(gw: &Gateway, want: u64) -> Vec<Value> {
    let mut last = Value::Null;
    wait::poll(CATCH_UP, Duration::from_millis(50), || {
        let dump = gw.admin_json("/config_dump");
        let (config, applied) = (dump["generation"].as_u64()?, dump["listeners"]["generation"].as_u64());
        last = dump["listeners"].clone();
        (config >= want && applied == Some(config)).then(|| dump["listeners"]["ports"].as_array().cloned().unwrap_or_default())
    })
    .unwrap_or_else(|| panic!("the listeners did not reach generation {want}: {last}\n{}", gw.stderr_tail()))
}

/// The listener on `port` (any address), if the gateway reports one.
pub fn port(ports: &[Value], port: u16) -> Option<&Value> {
    ports.iter().find(|p| p["address"].as_str().is_some_and(|a| a.ends_with(&format!(":{port}"))))
}

/// `open`, `refused` or `error <what>`: one TCP connect to `host:port`, from the command
/// `make(args)` builds (a namespace's `python3`).
pub fn connect(make: impl FnOnce(&[&str]) -> Command, host: &str, port: u16) -> String {
    let port = port.to_string();
    let mut cmd = make(&["-c", CONNECT, host, &port]);
    String::from_utf8_lossy(&command::run(&mut cmd, Duration::from_secs(15)).stdout).trim().to_string()
}

const CONNECT: &str = "import socket, sys
try:
    socket.create_connection((sys.argv[1], int(sys.argv[2])), timeout=5).close()
    print('open')
except ConnectionRefusedError:
    print('refused')
except OSError as e:
    print('error', e)
";
