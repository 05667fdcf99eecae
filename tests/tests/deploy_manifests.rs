//! The Kubernetes manifests in deploy/, rendered as `kubectl apply -k deploy/`
//! renders them, read as typed objects, and checked for what the node agent
//! and the gateways need and must not have.

#[path = "deploy_manifests/command_line.rs"]
mod command_line;
#[path = "deploy_manifests/pods.rs"]
mod pods;
#[path = "deploy_manifests/rbac_rules.rs"]
mod rbac_rules;
#[path = "deploy_manifests/rendered.rs"]
mod rendered;
#[path = "deploy_manifests/workload_ca.rs"]
mod workload_ca;

use std::{collections::BTreeSet, sync::OnceLock};

use gateway_userspace::kubernetes::rbac;
use k8s_openapi::{api::core::v1::ServiceAccount, apimachinery::pkg::util::intstr::IntOrString};

use command_line::CommandLine;
use pods::{Workload, container_port, effective_security, selects};
use rendered::{Rendered, deploy_dir, render};

const NAMESPACE: &str = "gateway-system";
const AGENT_CAPABILITIES: &[&str] = &["BPF", "PERFMON", "NET_ADMIN", "SYS_ADMIN", "SYS_RESOURCE"];

fn base() -> &'static Rendered {
    static BASE: OnceLock<Rendered> = OnceLock::new();
    BASE.get_or_init(|| render(&deploy_dir()))
}

fn node_agent() -> Workload<'static> {
    match base().daemon_sets.as_slice() {
        [one] => Workload::of_daemon_set(one),
        other => panic!("expected one DaemonSet, the node agent; found {}", other.len()),
    }
}

fn gateways() -> Vec<(&'static str, Workload<'static>)> {
    let deployments = &base().deployments;
    assert_eq!(deployments.len(), 2, "expected two Deployments, the egress and the ingress gateway");
    ["egressgateway", "ingressgateway"]
        .into_iter()
        .map(|role| {
            let found = deployments
                .iter()
                .find(|d| d.metadata.labels.as_ref().and_then(|l| l.get("istio")).is_some_and(|v| v == role));
            (role, Workload::of_deployment(found.unwrap_or_else(|| panic!("no Deployment labelled istio: {role}"))))
        })
        .collect()
}

#[test]
fn every_document_reads_back_as_its_kubernetes_type() {
    let b = base();
    let names: Vec<_> = b.namespaces.iter().map(|n| n.metadata.name.as_deref().unwrap_or_default()).collect();
    assert_eq!(names, [NAMESPACE]);
    assert_eq!((b.service_accounts.len(), b.cluster_roles.len(), b.cluster_role_bindings.len()), (2, 2, 2));
    assert_eq!((b.daemon_sets.len(), b.deployments.len(), b.services.len(), b.disruption_budgets.len()), (1, 2, 2, 2));
    let namespaced = b
        .service_accounts
        .iter()
        .map(|o| (&o.metadata, "ServiceAccount"))
        .chain(b.daemon_sets.iter().map(|o| (&o.metadata, "DaemonSet")))
        .chain(b.deployments.iter().map(|o| (&o.metadata, "Deployment")))
        .chain(b.services.iter().map(|o| (&o.metadata, "Service")))
        .chain(b.disruption_budgets.iter().map(|o| (&o.metadata, "PodDisruptionBudget")));
    for (meta, kind) in namespaced {
        assert_eq!(meta.namespace.as_deref(), Some(NAMESPACE), "{kind} {:?}", meta.name);
    }
}

#[test]
fn the_node_agent_runs_on_every_node_with_capabilities_instead_of_privilege() {
    let agent = node_agent();
    let spec = agent.pod;
    assert_eq!(spec.host_network, Some(true), "hostNetwork");
    assert_eq!(spec.priority_class_name.as_deref(), Some("system-node-critical"));
    let tolerates_all = spec
        .tolerations
        .iter()
        .flatten()
        .any(|t| t.operator.as_deref() == Some("Exists") && t.key.is_none() && t.effect.is_none());
    assert!(tolerates_all, "the agent must tolerate every taint (operator: Exists, no key, no effect)");
    let strategy = agent.daemon_set().spec.as_ref().and_then(|s| s.update_strategy.as_ref()).expect("updateStrategy");
    assert_eq!(strategy.type_.as_deref(), Some("RollingUpdate"));
    // The new pod surges beside the old one and takes its sockets over: none is unavailable.
    let rolling = strategy.rolling_update.as_ref();
    assert_eq!(rolling.and_then(|r| r.max_surge.as_ref()), Some(&IntOrString::Int(1)), "maxSurge");
    assert_eq!(rolling.and_then(|r| r.max_unavailable.as_ref()), Some(&IntOrString::Int(0)), "maxUnavailable");
    let c = &spec.containers[0];
    let handover = c.args.iter().flatten().find_map(|a| a.strip_prefix("--handover=")).expect("--handover");
    let dir = std::path::Path::new(handover).parent().unwrap();
    let mount = c.volume_mounts.iter().flatten().find(|m| std::path::Path::new(&m.mount_path) == dir).expect("the handover directory is mounted");
    let volume = spec.volumes.iter().flatten().find(|v| v.name == mount.name).expect("its volume");
    assert!(volume.host_path.is_some(), "the handover socket is on the host, where the next pod finds it");
    // A declared port would keep the surge pod off the node (host ports conflict).
    assert!(c.ports.iter().flatten().all(|p| p.host_port.is_none()), "no host ports");

    let [container] = spec.containers.as_slice() else { panic!("the agent pod runs one container") };
    let sc = effective_security(spec, container);
    assert_ne!(sc.privileged, Some(true), "the agent container must not be privileged");
    assert_eq!(sc.run_as_user, Some(0), "the agent runs as root (the image's user is not) with capabilities");
    assert_eq!(sc.read_only_root_filesystem, Some(true), "readOnlyRootFilesystem");
    let caps = sc.capabilities.expect("capabilities");
    let added: BTreeSet<_> = caps.add.iter().flatten().map(String::as_str).collect();
    assert_eq!(added, AGENT_CAPABILITIES.iter().copied().collect(), "capabilities added");
    assert!(caps.drop.iter().flatten().any(|c| c == "ALL"), "capabilities: drop ALL first");

    let node_name = container.env.iter().flatten().find(|e| e.name == "NODE_NAME").expect("env NODE_NAME");
    let field = node_name.value_from.as_ref().and_then(|f| f.field_ref.as_ref()).map(|f| f.field_path.as_str());
    assert_eq!(field, Some("spec.nodeName"), "NODE_NAME comes from the downward API");
    assert!(CommandLine::of(container, NAMESPACE).has("kubernetes"), "the agent runs gateway run --kubernetes");
    pods::assert_resources(container);
}

#[test]
fn the_node_agent_mounts_the_hosts_bpffs_and_cgroup2() {
    let agent = node_agent();
    let container = &agent.pod.containers[0];
    let line = CommandLine::of(container, NAMESPACE);
    let bpffs = agent.host_mount(container, "/sys/fs/bpf").expect("the agent mounts the host's /sys/fs/bpf");
    let pins = line.values("bpffs");
    let pins = pins.first().copied().unwrap_or("/sys/fs/bpf/gateway");
    assert!(
        pins.starts_with(&format!("{}/", bpffs.mount_path)),
        "--bpffs {pins} lies outside the bpffs mount {}",
        bpffs.mount_path
    );
    let propagation = bpffs.mount_propagation.as_deref();
    assert!(
        matches!(propagation, Some("HostToContainer" | "Bidirectional")),
        "the agent must see the host's bpffs even when it is mounted after the container starts; got {propagation:?}"
    );
    // The host gets a bpffs when it has none: a container that mounts it
    // there, Bidirectional, runs before the agent.
    let mounter = agent.pod.init_containers.iter().flatten().find(|c| {
        agent.host_mount(c, "/sys/fs/bpf").is_some_and(|m| m.mount_propagation.as_deref() == Some("Bidirectional"))
    });
    let mounter = mounter.expect("an init container mounts /sys/fs/bpf with Bidirectional propagation");
    let script =
        mounter.command.iter().flatten().chain(mounter.args.iter().flatten()).cloned().collect::<Vec<_>>().join(" ");
    assert!(script.contains("mount -t bpf bpf /sys/fs/bpf"), "{}: {script}", mounter.name);

    let cgroup = agent.host_mount(container, "/sys/fs/cgroup").expect("the agent mounts the host's /sys/fs/cgroup");
    assert_eq!(cgroup.mount_path, "/sys/fs/cgroup", "the host's cgroup2 tree, where the kubelet's paths lead");

    let config = line.values("config");
    for path in config {
        let mount = container.volume_mounts.iter().flatten().find(|m| m.mount_path == path);
        let mount = mount.unwrap_or_else(|| panic!("--config {path} is not a mount"));
        let volume = agent.volume(&mount.name);
        let map = volume.config_map.as_ref().unwrap_or_else(|| panic!("--config {path}: not a ConfigMap"));
        assert_eq!(map.optional, Some(true), "the ConfigMap behind --config {path} is optional");
    }
}

#[test]
fn bidirectional_mounts_are_only_in_privileged_containers() {
    // The API server refuses anything else.
    let workloads = std::iter::once(node_agent()).chain(gateways().into_iter().map(|(_, w)| w));
    for w in workloads {
        for c in w.pod.init_containers.iter().flatten().chain(&w.pod.containers) {
            for m in c.volume_mounts.iter().flatten() {
                if m.mount_propagation.as_deref() == Some("Bidirectional") {
                    assert_eq!(
                        effective_security(w.pod, c).privileged,
                        Some(true),
                        "{}: {} is Bidirectional",
                        c.name,
                        m.name
                    );
                }
            }
        }
    }
}

#[test]
fn probes_reach_the_admin_endpoint() {
    let workloads = std::iter::once(node_agent()).chain(gateways().into_iter().map(|(_, w)| w));
    for w in workloads {
        for c in &w.pod.containers {
            let admin = CommandLine::of(c, NAMESPACE).admin_address();
            for (kind, probe, path) in
                [("readiness", &c.readiness_probe, "/ready"), ("liveness", &c.liveness_probe, "/healthz")]
            {
                let get = probe.as_ref().and_then(|p| p.http_get.as_ref());
                let get = get.unwrap_or_else(|| panic!("{}: no {kind} httpGet probe", c.name));
                assert_eq!(get.path.as_deref(), Some(path), "{}: {kind} path", c.name);
                assert_eq!(
                    container_port(c, &get.port),
                    admin.port(),
                    "{}: {kind} port against --admin-address {admin}",
                    c.name
                );
                // The kubelet connects from the node to `host`, by default the
                // pod's address: the node's own with hostNetwork.
                let reachable = match get.host.as_deref() {
                    None => admin.ip().is_unspecified(),
                    Some(host) => {
                        w.pod.host_network == Some(true)
                            && (admin.ip().is_unspecified() || admin.ip().to_string() == host)
                    }
                };
                assert!(reachable, "{}: the kubelet cannot reach --admin-address {admin} at {:?}", c.name, get.host);
            }
        }
    }
}

#[test]
fn the_gateways_run_unprivileged_with_a_read_only_root() {
    for (role, w) in gateways() {
        let labels = w.pod_labels();
        assert_eq!(labels.get("istio").map(String::as_str), Some(role), "{role}: pod label istio");
        assert!(selects(w.selector(), labels), "{role}: the Deployment's selector misses its pods");
        assert_ne!(w.pod.host_network, Some(true), "{role}: hostNetwork");
        for c in &w.pod.containers {
            let line = CommandLine::of(c, NAMESPACE);
            assert!(
                line.values("labels").iter().any(|l| l.split(',').any(|kv| kv == format!("istio={role}"))),
                "{role}: --labels"
            );
            let sc = effective_security(w.pod, c);
            assert_eq!(sc.run_as_non_root, Some(true), "{role}: runAsNonRoot");
            assert!(sc.run_as_user.is_some_and(|u| u > 0), "{role}: a numeric non-root runAsUser");
            assert_eq!(sc.read_only_root_filesystem, Some(true), "{role}: readOnlyRootFilesystem");
            assert_eq!(sc.allow_privilege_escalation, Some(false), "{role}: allowPrivilegeEscalation");
            assert_ne!(sc.privileged, Some(true), "{role}: privileged");
            let seccomp = sc.seccomp_profile.map(|p| p.type_);
            assert_eq!(seccomp.as_deref(), Some("RuntimeDefault"), "{role}: seccomp");
            let caps = sc.capabilities.unwrap_or_else(|| panic!("{role}: capabilities"));
            assert_eq!(caps.drop.as_deref(), Some(&["ALL".to_string()][..]), "{role}: drop ALL capabilities");
            let low_port = c.ports.iter().flatten().any(|p| p.container_port < 1024);
            let allowed: &[&str] = if low_port { &["NET_BIND_SERVICE"] } else { &[] };
            let added: Vec<_> = caps.add.iter().flatten().map(String::as_str).collect();
            assert!(
                added.iter().all(|a| allowed.contains(a)),
                "{role}: capabilities added {added:?}; allowed {allowed:?}"
            );
            pods::assert_resources(c);
        }
    }
}

#[test]
fn services_and_disruption_budgets_select_the_gateways() {
    for (role, w) in gateways() {
        let labels = w.pod_labels();
        let service = base().services.iter().find(|s| {
            s.spec
                .as_ref()
                .and_then(|s| s.selector.as_ref())
                .is_some_and(|sel| sel.iter().all(|(k, v)| labels.get(k) == Some(v)))
        });
        let spec =
            service.and_then(|s| s.spec.as_ref()).unwrap_or_else(|| panic!("no Service selects the {role} pods"));
        let wanted_type = if role == "ingressgateway" { "LoadBalancer" } else { "ClusterIP" };
        assert_eq!(spec.type_.as_deref().unwrap_or("ClusterIP"), wanted_type, "{role}: Service type");
        let c = &w.pod.containers[0];
        let mut mapping: Vec<(i32, i32)> = spec
            .ports
            .iter()
            .flatten()
            .map(|p| (p.port, container_port(c, p.target_port.as_ref().unwrap_or(&IntOrString::Int(p.port))) as i32))
            .collect();
        mapping.sort();
        assert_eq!(mapping, [(80, 8080), (443, 8443)], "{role}: Service ports → container ports");
        for (_, target) in &mapping {
            assert!(
                c.ports.iter().flatten().any(|p| p.container_port == *target),
                "{role}: port {target} is not declared"
            );
        }
        // The gateway finds its Service's target ports through its own pod's name.
        let pod_name = c.env.iter().flatten().find(|e| e.name == "POD_NAME").and_then(|e| e.value_from.as_ref());
        let field = pod_name.and_then(|v| v.field_ref.as_ref()).map(|f| f.field_path.as_str());
        assert_eq!(field, Some("metadata.name"), "{role}: POD_NAME from the downward API");

        let budget = base()
            .disruption_budgets
            .iter()
            .find(|b| b.spec.as_ref().and_then(|s| s.selector.as_ref()).is_some_and(|sel| selects(sel, labels)));
        let budget =
            budget.and_then(|b| b.spec.as_ref()).unwrap_or_else(|| panic!("no PodDisruptionBudget covers {role}"));
        let replicas = w.replicas();
        assert_eq!(budget.min_available, Some(IntOrString::Int(1)), "{role}: minAvailable");
        assert!(replicas > 1, "{role}: with {replicas} replica(s) a budget of one blocks every drain");
    }
}

/// The ClusterRole bound to `account` (there must be exactly one binding).
fn role_bound_to(account: &ServiceAccount) -> &'static k8s_openapi::api::rbac::v1::ClusterRole {
    let (name, ns) = (account.metadata.name.as_deref().unwrap(), account.metadata.namespace.as_deref().unwrap());
    let bindings: Vec<_> = base()
        .cluster_role_bindings
        .iter()
        .filter(|b| {
            b.subjects
                .iter()
                .flatten()
                .any(|s| s.kind == "ServiceAccount" && s.name == name && s.namespace.as_deref() == Some(ns))
        })
        .collect();
    let [binding] = bindings.as_slice() else {
        panic!("ServiceAccount {ns}/{name} has {} ClusterRoleBindings, not one", bindings.len())
    };
    assert_eq!(
        (binding.role_ref.kind.as_str(), binding.role_ref.api_group.as_str()),
        ("ClusterRole", "rbac.authorization.k8s.io")
    );
    let role = base().cluster_roles.iter().find(|r| r.metadata.name.as_deref() == Some(binding.role_ref.name.as_str()));
    role.unwrap_or_else(|| panic!("ClusterRole {} is bound but not defined", binding.role_ref.name))
}

fn service_account(w: &Workload) -> &'static ServiceAccount {
    let name = w.pod.service_account_name.as_deref().expect("serviceAccountName");
    let found = base().service_accounts.iter().find(|a| a.metadata.name.as_deref() == Some(name));
    found.unwrap_or_else(|| panic!("ServiceAccount {name} is used but not defined"))
}

#[test]
fn the_node_agent_is_granted_exactly_its_api_calls() {
    let account = service_account(&node_agent());
    rbac_rules::assert_grants_exactly(role_bound_to(account), rbac::NODE_AGENT, "NODE_AGENT");
}

#[test]
fn the_gateways_are_granted_exactly_their_api_calls() {
    for (role, w) in gateways() {
        let account = service_account(&w);
        assert_ne!(
            account.metadata.name,
            service_account(&node_agent()).metadata.name,
            "{role} borrows the agent's account"
        );
        rbac_rules::assert_grants_exactly(role_bound_to(account), rbac::GATEWAY, "GATEWAY");
        // In their own namespace only: the Secrets of credentialName.
        let ns = account.metadata.namespace.as_deref().unwrap();
        let bindings: Vec<_> = base()
            .role_bindings
            .iter()
            .filter(|b| b.metadata.namespace.as_deref() == Some(ns))
            .filter(|b| b.subjects.iter().flatten().any(|s| s.kind == "ServiceAccount" && Some(s.name.as_str()) == account.metadata.name.as_deref()))
            .collect();
        let [binding] = bindings.as_slice() else { panic!("{role}: {} RoleBindings in {ns}, not one", bindings.len()) };
        assert_eq!(binding.role_ref.kind, "Role", "{role}: the binding in {ns} names a Role");
        let bound = base()
            .roles
            .iter()
            .find(|r| r.metadata.name.as_deref() == Some(binding.role_ref.name.as_str()) && r.metadata.namespace.as_deref() == Some(ns))
            .unwrap_or_else(|| panic!("Role {ns}/{} is bound but not defined", binding.role_ref.name));
        rbac_rules::assert_role_grants_exactly(bound, rbac::GATEWAY_IN_NAMESPACE, "GATEWAY_IN_NAMESPACE");
        let c = &w.pod.containers[0];
        assert!(c.args.iter().flatten().any(|a| a == "--credential-secrets"), "{role}: reads its credentials from Secrets");
        let mount = c.volume_mounts.iter().flatten().find(|m| m.mount_path == "/var/run/gateway/credentials");
        let volume = mount.and_then(|m| w.pod.volumes.iter().flatten().find(|v| v.name == m.name));
        let medium = volume.and_then(|v| v.empty_dir.as_ref()).and_then(|e| e.medium.as_deref());
        assert_eq!(medium, Some("Memory"), "{role}: credentials on a memory-backed volume");
    }
}

#[test]
fn every_command_line_is_one_gateway_run_accepts() {
    let workloads = std::iter::once(node_agent()).chain(gateways().into_iter().map(|(_, w)| w));
    for w in workloads {
        for c in &w.pod.containers {
            CommandLine::of(c, NAMESPACE).check_flags();
        }
    }
}

#[test]
fn an_overlay_can_replace_the_image() {
    let every_image = |r: &Rendered| -> Vec<String> {
        let pods =
            r.daemon_sets.iter().map(Workload::of_daemon_set).chain(r.deployments.iter().map(Workload::of_deployment));
        pods.flat_map(|w| {
            w.pod
                .init_containers
                .iter()
                .flatten()
                .chain(&w.pod.containers)
                .map(|c| c.image.clone().unwrap_or_default())
                .collect::<Vec<_>>()
        })
        .collect()
    };
    let base_images = every_image(base());
    assert!(base_images.iter().all(|i| i == "gateway:latest"), "{base_images:?}");
    let overlay = pods::overlay_setting_image("registry.example/gateway", "1.2.3");
    let images = every_image(&render(&overlay));
    assert_eq!(images.len(), base_images.len());
    assert!(images.iter().all(|i| i == "registry.example/gateway:1.2.3"), "{images:?}");
}
