//! The cluster as the source of truth: pods on this node, Services, and
//! Istio resources, read from the Kubernetes API.

pub mod rbac;
