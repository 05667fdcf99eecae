//! Harness for the privileged end-to-end tests of `gateway`.
//!
//! Every test builds its own sealed topology of network namespaces (`node`, `pod-a`, `pod-b`,
//! `internet`) and one cgroup per pod, starts the real `gateway` binary in `node`, runs real
//! clients inside a pod's namespace and cgroup, and checks what the client got, what the server in
//! `internet` saw and what the gateway logged. Nothing links the topology to the machine's own
//! network, and every name carries the prefix `gwt-<runner pid>-<n>` so that what a crashed run left
//! behind can be found and removed (see `cleanup`).
//!
//! The path of one connection through these files: `topology` builds the hosts, `pod_command`
//! starts the client in a pod, `gateway_process` runs the proxy, `echo_server` / `nginx` answer in
//! `internet`, `gateway_log` reads the proxy's verdict, `checks` matches the three views of a
//! connection, `capture` watches for bypasses on the far side of the routing node, and
//! `bpf_inspect` looks at the kernel side.
//!
//! `kube_api` stands in for kube-apiserver (which no package here carries): the node agent reaches
//! it through a kubeconfig, and the test reads and writes the cluster state directly. `kubelet`
//! and `kube_node` shape a node of that cluster: a kubelet cgroup tree and the agent's flags.

pub mod addresses;
pub mod bpf_inspect;
pub mod capture;
pub mod certs;
pub mod cgroup;
pub mod checks;
pub mod cleanup;
pub mod client;
pub mod command;
pub mod connect_loop;
pub mod dnsmasq;
pub mod echo_server;
pub mod gateway_listeners;
pub mod gateway_log;
pub mod gateway_process;
pub mod http_backend;
pub mod istio;
pub mod kube_api;
pub mod kube_node;
pub mod kubelet;
pub mod memory_cgroup;
pub mod names;
pub mod netns;
pub mod nginx;
pub mod pod_command;
pub mod prereq;
pub mod script;
pub mod temp_dir;
pub mod topology;
pub mod udp_sink;
pub mod wait;
