//! The `deploy/workload-ca/` component on top of the base: `gateway ca`
//! and the node agent's CSR flags, each service account granted exactly
//! the calls of its tables in `kubernetes::rbac`.

use std::{path::PathBuf, sync::OnceLock};

use clap::Parser;
use gateway_userspace::{cli::Cli, kubernetes::rbac, workload_ca::SIGNER_NAME};
use k8s_openapi::api::rbac::v1::PolicyRule;

use crate::{
    command_line::CommandLine,
    pods::{Workload, effective_security, relative},
    rbac_rules,
    rendered::{Rendered, deploy_dir, render},
};

const NAMESPACE: &str = "gateway-system";

fn rendered() -> &'static Rendered {
    static WITH_CA: OnceLock<Rendered> = OnceLock::new();
    WITH_CA.get_or_init(|| render(&overlay_with_component()))
}

/// An overlay of the base that enables the component, as an operator writes it.
fn overlay_with_component() -> PathBuf {
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("deploy-overlay-workload-ca");
    std::fs::create_dir_all(&dir).unwrap_or_else(|e| panic!("create {}: {e}", dir.display()));
    let base = relative(&dir, &deploy_dir());
    let component = relative(&dir, &deploy_dir().join("workload-ca"));
    let text = format!(
        "apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\nbases:\n- {}\ncomponents:\n- {}\n",
        base.display(),
        component.display()
    );
    std::fs::write(dir.join("kustomization.yaml"), text).expect("write the overlay");
    dir
}

/// Every rule of the ClusterRoles bound to `account`, and of its Roles.
fn rules_of(account: &str) -> (Vec<(String, Vec<PolicyRule>)>, Vec<PolicyRule>) {
    let r = rendered();
    let is_account = |s: &k8s_openapi::api::rbac::v1::Subject| s.kind == "ServiceAccount" && s.name == account;
    let cluster = r
        .cluster_role_bindings
        .iter()
        .filter(|b| b.subjects.iter().flatten().any(is_account))
        .map(|b| {
            let role = r.cluster_roles.iter().find(|c| c.metadata.name.as_deref() == Some(&b.role_ref.name)).expect("bound ClusterRole");
            (b.role_ref.name.clone(), role.rules.clone().unwrap_or_default())
        })
        .collect();
    let namespaced = r
        .role_bindings
        .iter()
        .filter(|b| b.subjects.iter().flatten().any(is_account))
        .flat_map(|b| {
            assert_eq!(b.metadata.namespace.as_deref(), Some(NAMESPACE));
            let role = r.roles.iter().find(|c| c.metadata.name.as_deref() == Some(&b.role_ref.name)).expect("bound Role");
            role.rules.clone().unwrap_or_default()
        })
        .collect();
    (cluster, namespaced)
}

#[test]
fn the_ca_is_granted_exactly_its_api_calls_and_its_own_signer() {
    let (cluster, namespaced) = rules_of("gateway-ca");
    let [(name, rules)] = cluster.as_slice() else { panic!("gateway-ca: one ClusterRole, not {}", cluster.len()) };
    let (signer_rules, rest): (Vec<PolicyRule>, Vec<PolicyRule>) =
        rules.iter().cloned().partition(|r| r.resources.iter().flatten().any(|res| res == "signers"));
    let (group, resource, verbs) = rbac::WORKLOAD_CA_SIGNER;
    let [signer] = signer_rules.as_slice() else { panic!("{name}: one rule on signers") };
    assert_eq!(signer.api_groups.as_deref(), Some(&[group.to_string()][..]));
    assert_eq!(signer.resources.as_deref(), Some(&[resource.to_string()][..]));
    assert_eq!(signer.resource_names.as_deref(), Some(&[SIGNER_NAME.to_string()][..]), "its own signer name only");
    assert_eq!(signer.verbs, verbs.iter().map(|v| v.to_string()).collect::<Vec<_>>());
    rbac_rules::assert_rules_grant_exactly(name, Some(&rest), rbac::WORKLOAD_CA, "WORKLOAD_CA");
    rbac_rules::assert_rules_grant_exactly("gateway-ca Roles", Some(&namespaced), rbac::WORKLOAD_CA_IN_NAMESPACE, "WORKLOAD_CA_IN_NAMESPACE");
}

#[test]
fn the_node_agent_is_granted_exactly_its_csr_calls_besides_its_base_role() {
    let (cluster, namespaced) = rules_of("gateway-node");
    let extra: Vec<_> = cluster.iter().filter(|(name, _)| name != "gateway-node").collect();
    let [(name, rules)] = extra.as_slice() else { panic!("gateway-node: one more ClusterRole, not {}", extra.len()) };
    rbac_rules::assert_rules_grant_exactly(name, Some(rules), rbac::NODE_AGENT_WORKLOAD_CERTS, "NODE_AGENT_WORKLOAD_CERTS");
    rbac_rules::assert_rules_grant_exactly(
        "gateway-node Roles",
        Some(&namespaced),
        rbac::NODE_AGENT_WORKLOAD_CERTS_IN_NAMESPACE,
        "NODE_AGENT_WORKLOAD_CERTS_IN_NAMESPACE",
    );
}

#[test]
fn the_gateways_are_granted_exactly_their_csr_calls_besides_their_base_roles() {
    let (cluster, namespaced) = rules_of("gateway");
    let extra: Vec<_> = cluster.iter().filter(|(name, _)| name != "gateway").collect();
    let [(name, rules)] = extra.as_slice() else { panic!("gateway: one more ClusterRole, not {}", extra.len()) };
    rbac_rules::assert_rules_grant_exactly(name, Some(rules), rbac::GATEWAY_WORKLOAD_CERTS, "GATEWAY_WORKLOAD_CERTS");
    // The base Role (credential Secrets) and the trust bundle's.
    let bundle: Vec<PolicyRule> =
        namespaced.into_iter().filter(|r| r.resources.iter().flatten().any(|res| res == "configmaps")).collect();
    rbac_rules::assert_rules_grant_exactly("gateway Roles", Some(&bundle), rbac::GATEWAY_WORKLOAD_CERTS_IN_NAMESPACE, "GATEWAY_WORKLOAD_CERTS_IN_NAMESPACE");
}

#[test]
fn the_gateways_obtain_their_own_identity_onto_a_memory_backed_volume() {
    for d in &rendered().deployments {
        let name = d.metadata.name.as_deref().unwrap_or_default();
        if name == "gateway-ca" {
            continue;
        }
        let w = Workload::of_deployment(d);
        let c = &w.pod.containers[0];
        let line = CommandLine::of(c, NAMESPACE);
        line.check_flags();
        assert!(line.has("cert-from-csr"), "{name}");
        assert_eq!(line.values("service-account"), [format!("{NAMESPACE}/{}", w.pod.service_account_name.as_deref().unwrap_or_default())], "{name}: its own service account");
        let key = line.values("key")[0].to_string();
        let mount = c.volume_mounts.iter().flatten().find(|m| key.starts_with(&m.mount_path)).expect("the key's mount");
        let volume = w.pod.volumes.iter().flatten().find(|v| v.name == mount.name).expect("its volume");
        assert_eq!(volume.empty_dir.as_ref().and_then(|e| e.medium.as_deref()), Some("Memory"), "{name}: key in memory");
    }
}

#[test]
fn the_ca_runs_unprivileged_with_its_key_from_a_secret_and_the_agent_requests_certificates() {
    let r = rendered();
    let ca = r.deployments.iter().find(|d| d.metadata.name.as_deref() == Some("gateway-ca")).expect("the gateway-ca Deployment");
    let w = Workload::of_deployment(ca);
    assert_eq!(w.pod.service_account_name.as_deref(), Some("gateway-ca"));
    let [c] = w.pod.containers.as_slice() else { panic!("one container") };
    let security = effective_security(w.pod, c);
    assert_eq!(security.run_as_non_root, Some(true));
    assert_eq!(security.read_only_root_filesystem, Some(true));
    let line = CommandLine::of(c, NAMESPACE);
    assert_eq!(line.args.first().map(String::as_str), Some("ca"));
    let argv = std::iter::once("gateway".to_string()).chain(line.args.iter().cloned());
    if let Err(e) = Cli::try_parse_from(argv) {
        panic!("gateway-ca: `{}` is refused:\n{e}", line.args.join(" "));
    }
    let key_dir = line.values("ca-key")[0].rsplit_once('/').map(|(d, _)| d.to_string()).unwrap_or_default();
    let mount = c.volume_mounts.iter().flatten().find(|m| m.mount_path == key_dir).expect("the CA key is mounted");
    let volume = w.pod.volumes.iter().flatten().find(|v| v.name == mount.name).expect("its volume");
    assert_eq!(volume.secret.as_ref().and_then(|s| s.secret_name.as_deref()), Some("gateway-ca"), "the key from a Secret");

    let agent = r.daemon_sets.first().map(Workload::of_daemon_set).expect("the node agent");
    let c = &agent.pod.containers[0];
    let line = CommandLine::of(c, NAMESPACE);
    line.check_flags();
    assert!(line.has("workload-certs-from-csr"));
    let certs = line.values("workload-certs")[0].to_string();
    let mount = c.volume_mounts.iter().flatten().find(|m| certs.starts_with(&m.mount_path)).expect("the certificates' mount");
    let volume = agent.pod.volumes.iter().flatten().find(|v| v.name == mount.name).expect("its volume");
    assert_eq!(volume.empty_dir.as_ref().and_then(|e| e.medium.as_deref()), Some("Memory"), "keys on a memory-backed volume");
}
