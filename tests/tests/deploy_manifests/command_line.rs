//! A container's `gateway` command line as the process receives it: `$(VAR)`
//! expanded as the kubelet expands it, and every flag one that `gateway run`
//! accepts.

use std::net::SocketAddr;

use clap::{CommandFactory, Parser};
use gateway_userspace::cli::Cli;
use k8s_openapi::api::core::v1::Container;

/// Where the image installs the binary (see Containerfile).
pub const GATEWAY: &str = "/usr/local/bin/gateway";

/// Stand-ins for the downward API fields a manifest may read.
fn field_sample(field_path: &str, namespace: &str) -> String {
    match field_path {
        "spec.nodeName" => "node-a".into(),
        "status.hostIP" | "status.podIP" => "192.0.2.10".into(),
        "metadata.namespace" => namespace.into(),
        "metadata.name" => "gateway-0".into(),
        other => panic!("no sample value for the downward API field {other}; add one"),
    }
}

/// The arguments after the binary, `$(VAR)`s expanded.
pub struct CommandLine {
    pub container: String,
    pub args: Vec<String>,
    /// The container's environment, with downward API samples.
    env: Vec<(String, String)>,
}

impl CommandLine {
    /// The command line of a container that runs `gateway`.
    pub fn of(container: &Container, namespace: &str) -> Self {
        let name = &container.name;
        assert_eq!(container.command.as_deref(), Some(&[GATEWAY.to_string()][..]), "container {name}: command");
        let env: Vec<(String, String)> = container
            .env
            .iter()
            .flatten()
            .map(|var| {
                let value = match (&var.value, &var.value_from) {
                    (Some(v), None) => v.clone(),
                    (None, Some(from)) => {
                        let field =
                            from.field_ref.as_ref().unwrap_or_else(|| panic!("{name}: {} reads no field", var.name));
                        field_sample(&field.field_path, namespace)
                    }
                    _ => panic!("container {name}: env {} needs exactly one of value and valueFrom", var.name),
                };
                (var.name.clone(), value)
            })
            .collect();
        let args = container.args.iter().flatten().map(|a| expand(a, &env, name)).collect();
        Self { container: name.clone(), args, env }
    }

    /// Every value given to `--flag` (as `--flag=V` or `--flag V`).
    pub fn values(&self, flag: &str) -> Vec<&str> {
        let long = format!("--{flag}");
        let mut out = Vec::new();
        for (i, arg) in self.args.iter().enumerate() {
            if let Some(v) = arg.strip_prefix(&long).and_then(|rest| rest.strip_prefix('=')) {
                out.push(v);
            } else if *arg == long
                && let Some(v) = self.args.get(i + 1)
            {
                out.push(v.as_str());
            }
        }
        out
    }

    pub fn has(&self, flag: &str) -> bool {
        self.args.iter().any(|a| a == &format!("--{flag}"))
    }

    /// Where the admin endpoint listens: `--admin-address`, else its default.
    pub fn admin_address(&self) -> SocketAddr {
        let given = self.values("admin-address");
        let text = match given.as_slice() {
            [] => run_default("admin_address"),
            [one] => one.to_string(),
            many => panic!("{}: --admin-address given {} times", self.container, many.len()),
        };
        text.parse().unwrap_or_else(|e| panic!("{}: admin address {text}: {e}", self.container))
    }

    /// Fails on a subcommand other than `run` or a flag `gateway run` does
    /// not have, then parses the whole line with the real CLI, with the
    /// flags it reads from the environment (`NODE_NAME`) taken from the
    /// container's env, as the process would see them.
    pub fn check_flags(&self) {
        let who = &self.container;
        assert_eq!(self.args.first().map(String::as_str), Some("run"), "{who}: the subcommand");
        let known = run_flags();
        for arg in &self.args[1..] {
            let Some(flag) = arg.strip_prefix("--") else { continue };
            let flag = flag.split_once('=').map_or(flag, |(f, _)| f);
            assert!(known.iter().any(|k| k == flag), "{who}: `gateway run` has no flag --{flag}");
        }
        let mut argv: Vec<String> = std::iter::once("gateway".to_string()).chain(self.args.iter().cloned()).collect();
        for arg in run_command().get_arguments() {
            let (Some(long), Some(var)) = (arg.get_long(), arg.get_env()) else { continue };
            let given = !self.values(long).is_empty() || self.has(long);
            if let Some((_, value)) = self.env.iter().find(|(n, _)| var == n.as_str()).filter(|_| !given) {
                argv.push(format!("--{long}={value}"));
            }
        }
        if let Err(e) = Cli::try_parse_from(&argv) {
            panic!("{who}: `{}` is refused:\n{e}", argv.join(" "));
        }
    }
}

/// `$(NAME)` replaced by NAME's value; an unknown NAME fails, since the
/// kubelet would leave it as it is.
fn expand(arg: &str, env: &[(String, String)], container: &str) -> String {
    let mut out = String::new();
    let mut rest = arg;
    while let Some(start) = rest.find("$(") {
        out.push_str(&rest[..start]);
        let end = rest[start..].find(')').unwrap_or_else(|| panic!("{container}: unclosed $( in {arg}")) + start;
        let name = &rest[start + 2..end];
        let value = env.iter().find(|(n, _)| n == name).map(|(_, v)| v);
        out.push_str(
            value.unwrap_or_else(|| panic!("{container}: {arg} refers to $({name}), which its env does not set")),
        );
        rest = &rest[end + 1..];
    }
    out.push_str(rest);
    out
}

fn run_command() -> clap::Command {
    Cli::command().find_subcommand("run").expect("gateway has a run subcommand").clone()
}

fn run_flags() -> Vec<String> {
    run_command().get_arguments().filter_map(|a| a.get_long().map(str::to_string)).collect()
}

fn run_default(id: &str) -> String {
    let command = run_command();
    let arg = command.get_arguments().find(|a| a.get_id() == id).unwrap_or_else(|| panic!("gateway run has no {id}"));
    let value = arg.get_default_values().first().unwrap_or_else(|| panic!("{id} has no default"));
    value.to_string_lossy().into_owned()
}
