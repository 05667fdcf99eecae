//! Command-line parsing: defaults, limits and refusals.

use clap::Parser;

use crate::cli::*;
use crate::cli::{parse_cgroup, parse_labels};

#[test]
fn labels_parse_and_reject_malformed_pairs() {
    let m = parse_labels("istio=egressgateway, app=gw").unwrap();
    assert_eq!(m.get("istio").map(String::as_str), Some("egressgateway"));
    assert_eq!(m.len(), 2);
    assert!(parse_labels("").unwrap().is_empty());
    assert!(parse_labels("novalue").is_err());
    assert!(parse_labels("=x").is_err());
}

#[test]
fn proxy_addresses_default_to_loopback_and_allow_one_per_family() {
    let cli = Cli::try_parse_from(["gateway", "run", "--config", "x"]).unwrap();
    let Command::Run(run) = cli.command else { panic!("not run") };
    assert_eq!(run.proxy_ips().unwrap().len(), 2);
    let cli = Cli::try_parse_from([
        "gateway", "run", "--config", "x", "--proxy-address", "198.18.0.1", "--proxy-address", "198.18.0.2",
    ])
    .unwrap();
    let Command::Run(run) = cli.command else { panic!("not run") };
    assert!(run.proxy_ips().is_err());
}

#[test]
fn an_intercepted_cgroup_may_name_its_workload_entry() {
    assert_eq!(parse_cgroup("/sys/fs/cgroup/a").unwrap().workload, None);
    let c = parse_cgroup("/sys/fs/cgroup/agent=infra/node-agent").unwrap();
    assert_eq!((c.path, c.workload), ("/sys/fs/cgroup/agent".into(), Some(("infra".into(), "node-agent".into()))));
    assert!(parse_cgroup("/x=noslash").is_err());
    assert!(parse_cgroup("/x=a/b/c").is_err());
}

#[test]
fn listener_limits_default_to_envoy_like_values() {
    let cli = Cli::try_parse_from(["gateway", "run", "--config", "x"]).unwrap();
    let Command::Run(run) = cli.command else { panic!("not run") };
    assert_eq!((run.max_connections_per_listener, run.idle_timeout_secs), (100_000, 3600));
    assert_eq!(run.revocation_drain_secs, 5);
    assert!(Cli::try_parse_from(["gateway", "run", "--config", "x", "--max-connections-per-listener", "0"]).is_err());
}

#[test]
fn kubernetes_mode_needs_no_config_files_and_pods_need_a_node() {
    let cli = Cli::try_parse_from(["gateway", "run", "--kubernetes", "--kubeconfig", "k"]).unwrap();
    let Command::Run(run) = cli.command else { panic!("not run") };
    assert!(run.config.is_empty() && run.kubernetes.kubernetes);
    assert_eq!(run.kubernetes.exempt_namespaces, ["kube-system"]);
    assert!(Cli::try_parse_from(["gateway", "run"]).is_err());
    assert!(Cli::try_parse_from(["gateway", "run", "--config", "x", "--intercept-pods"]).is_err());
}

#[test]
fn socket_mark_zero_is_refused() {
    assert!(Cli::try_parse_from(["gateway", "run", "--config", "x", "--socket-mark", "0"]).is_err());
}
