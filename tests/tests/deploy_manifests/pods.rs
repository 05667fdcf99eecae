//! The pod templates of the rendered workloads, and the questions the tests
//! ask of them: effective security settings, ports by name, selectors,
//! host mounts.

use std::{
    collections::BTreeMap,
    path::{Component, Path, PathBuf},
};

use k8s_openapi::{
    api::{
        apps::v1::{DaemonSet, Deployment},
        core::v1::{Container, PodSpec, SecurityContext, Volume, VolumeMount},
    },
    apimachinery::pkg::{apis::meta::v1::LabelSelector, util::intstr::IntOrString},
};

use crate::rendered::deploy_dir;

/// A DaemonSet or a Deployment, with its pod template.
pub struct Workload<'a> {
    pub pod: &'a PodSpec,
    labels: &'a BTreeMap<String, String>,
    selector: &'a LabelSelector,
    daemon_set: Option<&'a DaemonSet>,
    replicas: i32,
}

impl<'a> Workload<'a> {
    pub fn of_daemon_set(d: &'a DaemonSet) -> Self {
        let name = d.metadata.name.as_deref().unwrap_or_default();
        let spec = d.spec.as_ref().unwrap_or_else(|| panic!("DaemonSet {name} has no spec"));
        let (pod, labels) = template(&spec.template.spec, &spec.template.metadata, name);
        Self { pod, labels, selector: &spec.selector, daemon_set: Some(d), replicas: 0 }
    }

    pub fn of_deployment(d: &'a Deployment) -> Self {
        let name = d.metadata.name.as_deref().unwrap_or_default();
        let spec = d.spec.as_ref().unwrap_or_else(|| panic!("Deployment {name} has no spec"));
        let (pod, labels) = template(&spec.template.spec, &spec.template.metadata, name);
        Self { pod, labels, selector: &spec.selector, daemon_set: None, replicas: spec.replicas.unwrap_or(1) }
    }

    pub fn daemon_set(&self) -> &'a DaemonSet {
        self.daemon_set.expect("a DaemonSet")
    }

    pub fn pod_labels(&self) -> &'a BTreeMap<String, String> {
        self.labels
    }

    pub fn selector(&self) -> &'a LabelSelector {
        self.selector
    }

    /// A Deployment's replicas.
    pub fn replicas(&self) -> i32 {
        self.replicas
    }

    pub fn volume(&self, name: &str) -> &'a Volume {
        let found = self.pod.volumes.iter().flatten().find(|v| v.name == name);
        found.unwrap_or_else(|| panic!("volume {name} is mounted but not defined"))
    }

    /// The mount of the host directory `host_path` in `container`.
    pub fn host_mount<'c>(&self, container: &'c Container, host_path: &str) -> Option<&'c VolumeMount> {
        container.volume_mounts.iter().flatten().find(|m| {
            self.volume(&m.name).host_path.as_ref().is_some_and(|h| h.path.trim_end_matches('/') == host_path)
        })
    }
}

fn template<'a>(
    spec: &'a Option<PodSpec>,
    meta: &'a Option<k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta>,
    name: &str,
) -> (&'a PodSpec, &'a BTreeMap<String, String>) {
    let pod = spec.as_ref().unwrap_or_else(|| panic!("{name}: the pod template has no spec"));
    let labels = meta.as_ref().and_then(|m| m.labels.as_ref());
    (pod, labels.unwrap_or_else(|| panic!("{name}: the pod template has no labels")))
}

/// The settings that apply to `c`: its own, else the pod's.
pub fn effective_security(pod: &PodSpec, c: &Container) -> SecurityContext {
    let mut sc = c.security_context.clone().unwrap_or_default();
    if let Some(p) = &pod.security_context {
        sc.run_as_user = sc.run_as_user.or(p.run_as_user);
        sc.run_as_group = sc.run_as_group.or(p.run_as_group);
        sc.run_as_non_root = sc.run_as_non_root.or(p.run_as_non_root);
        sc.seccomp_profile = sc.seccomp_profile.or_else(|| p.seccomp_profile.clone());
        sc.app_armor_profile = sc.app_armor_profile.or_else(|| p.app_armor_profile.clone());
        sc.se_linux_options = sc.se_linux_options.or_else(|| p.se_linux_options.clone());
    }
    sc
}

/// The container port a probe or Service names, by number or by name.
pub fn container_port(c: &Container, port: &IntOrString) -> u16 {
    let number = match port {
        IntOrString::Int(n) => *n,
        IntOrString::String(name) => {
            let found = c.ports.iter().flatten().find(|p| p.name.as_deref() == Some(name.as_str()));
            found.unwrap_or_else(|| panic!("{}: no port named {name}", c.name)).container_port
        }
    };
    u16::try_from(number).unwrap_or_else(|_| panic!("{}: port {number} is out of range", c.name))
}

/// Whether `selector` selects pods labelled `labels`.
pub fn selects(selector: &LabelSelector, labels: &BTreeMap<String, String>) -> bool {
    assert!(
        selector.match_expressions.as_ref().is_none_or(Vec::is_empty),
        "matchExpressions are not read by this test"
    );
    let wanted = selector.match_labels.as_ref().filter(|m| !m.is_empty()).expect("a selector with matchLabels");
    wanted.iter().all(|(k, v)| labels.get(k) == Some(v))
}

/// Requests and a memory limit, so the scheduler can place the pod and a
/// leak cannot take the node.
pub fn assert_resources(c: &Container) {
    let r = c.resources.as_ref().unwrap_or_else(|| panic!("{}: no resources", c.name));
    let requests = r.requests.as_ref().unwrap_or_else(|| panic!("{}: no requests", c.name));
    assert!(requests.contains_key("cpu") && requests.contains_key("memory"), "{}: cpu and memory requests", c.name);
    let limits = r.limits.as_ref().unwrap_or_else(|| panic!("{}: no limits", c.name));
    assert!(limits.contains_key("memory"), "{}: a memory limit", c.name);
}

/// A kustomization, in the test's scratch directory, that takes deploy/ as
/// its base and replaces the image as a user's overlay would.
pub fn overlay_setting_image(name: &str, tag: &str) -> PathBuf {
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("deploy-overlay-image");
    std::fs::create_dir_all(&dir).unwrap_or_else(|e| panic!("create {}: {e}", dir.display()));
    let base = relative(&dir, &deploy_dir());
    // `bases:` rather than `resources:`, which the kustomize of older kubectl
    // (Debian's) reads only as files; newer ones accept both.
    let text = format!(
        "apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\nbases:\n- {}\nimages:\n- name: gateway\n  newName: {name}\n  newTag: \"{tag}\"\n",
        base.display()
    );
    std::fs::write(dir.join("kustomization.yaml"), text).expect("write the overlay");
    dir
}

/// `to` relative to `from` (kustomize refuses absolute paths to bases).
pub fn relative(from: &Path, to: &Path) -> PathBuf {
    let canonical = |p: &Path| p.canonicalize().unwrap_or_else(|e| panic!("{}: {e}", p.display()));
    let (from, to) = (canonical(from), canonical(to));
    let common = from.components().zip(to.components()).take_while(|(a, b)| a == b).count();
    let ups = from.components().skip(common).map(|_| Component::ParentDir);
    ups.chain(to.components().skip(common)).collect()
}
