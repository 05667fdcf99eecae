//! Istio's AuthorizationPolicy semantics, one at a time, and path
//! normalisation against a corpus of the known bypasses.

mod paths;

use std::net::IpAddr;

use super::{Applies, AuthzAction, AuthzHttp, AuthzRequest, Authorized, Authorizer, AuthzSettings, path};
use crate::test_support::{labels, snapshot};

const SE: &str = "apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {name: stripe, namespace: payments}
spec:
  hosts: [api.stripe.test]
  ports: [{number: 443, name: tls, protocol: TLS}]
  resolution: DNS
";

fn authorizer(yaml: &str) -> Authorizer {
    Authorizer::build(&snapshot(&format!("{SE}---\n{yaml}")), AuthzSettings::default())
}

/// A request from namespace `ns` (service account `sa`), an HTTP `GET`
/// of `path` when `path` is given, else a TLS stream.
struct Req {
    principal: Option<String>,
    namespace: Option<String>,
    ip: IpAddr,
    remote: IpAddr,
    host: Option<String>,
    port: u16,
    http: Option<(String, String)>,
    headers: Vec<(String, String)>,
}

impl Req {
    fn from(ns: &str, sa: &str) -> Self {
        Req {
            principal: Some(format!("cluster.local/ns/{ns}/sa/{sa}")),
            namespace: Some(ns.into()),
            ip: "10.0.0.5".parse().unwrap(),
            remote: "10.0.0.5".parse().unwrap(),
            host: Some("api.stripe.test".into()),
            port: 443,
            http: None,
            headers: Vec::new(),
        }
    }
    fn get(mut self, path: &str) -> Self {
        self.http = Some(("GET".into(), path.into()));
        self
    }
    fn method(mut self, m: &str) -> Self {
        self.http.as_mut().expect("an HTTP request").0 = m.into();
        self
    }
    fn header(mut self, k: &str, v: &str) -> Self {
        self.headers.push((k.into(), v.into()));
        self
    }

    fn ask(&self, a: &Authorizer, applies: Applies<'_>) -> Authorized {
        let header = |name: &str| self.headers.iter().find(|(k, _)| k == name).map(|(_, v)| v.clone());
        let (normal, strict) = match &self.http {
            Some((_, p)) => (path::normalize(p, a.settings().path_normalization), path::strict(p)),
            None => (String::new(), String::new()),
        };
        let http = self.http.as_ref().map(|(m, _)| AuthzHttp { method: m, path: &normal, strict_path: &strict, header: &header });
        let req = AuthzRequest {
            principal: self.principal.as_deref(),
            namespace: self.namespace.as_deref(),
            source_ip: self.ip,
            remote_ip: self.remote,
            host: self.host.as_deref(),
            sni: self.host.as_deref().filter(|_| self.http.is_none()),
            port: self.port,
            http,
        };
        a.authorize(&applies, &req)
    }

    /// As a connection decided to the `stripe` ServiceEntry.
    fn to_entry(&self, a: &Authorizer) -> Authorized {
        self.ask(a, Applies { service_entry: Some(("payments", "stripe")), ..Applies::default() })
    }
}

const ONLY_PAYMENTS: &str = "apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: {name: only-payments, namespace: payments}
spec:
  targetRef: {kind: ServiceEntry, group: networking.istio.io, name: stripe}
  action: ALLOW
  rules:
  - from: [{source: {namespaces: [payments]}}]
";

#[test]
fn no_policy_decides_nothing() {
    let a = authorizer("");
    assert_eq!(Req::from("shop", "web").to_entry(&a), Authorized::default());
}

#[test]
fn an_allow_policy_on_a_service_entry_admits_its_namespace_only() {
    let a = authorizer(ONLY_PAYMENTS);
    let ok = Req::from("payments", "api").to_entry(&a);
    let d = ok.decision.expect("a policy applied");
    assert!(d.allowed);
    assert_eq!((d.policy.as_deref(), d.rule), (Some("payments/only-payments"), Some(0)));
    let no = Req::from("shop", "web").to_entry(&a).decision.expect("a policy applied");
    assert!(!no.allowed);
    assert_eq!((no.action, no.policy), (AuthzAction::Allow, None));
    // Another destination is not what the policy is attached to.
    let elsewhere = Req::from("shop", "web").ask(&a, Applies { service_entry: Some(("payments", "other")), ..Applies::default() });
    assert!(elsewhere.allowed() && elsewhere.decision.is_none());
}

#[test]
fn deny_comes_before_allow_and_names_policy_and_rule() {
    let a = authorizer(&format!(
        "{ONLY_PAYMENTS}---
apiVersion: security.istio.io/v1beta1
kind: AuthorizationPolicy
metadata: {{name: no-batch, namespace: payments}}
spec:
  targetRef: {{kind: ServiceEntry, name: stripe}}
  action: DENY
  rules:
  - from: [{{source: {{principals: [cluster.local/ns/payments/sa/other]}}}}]
  - from: [{{source: {{principals: ['*/sa/batch']}}}}]
"
    ));
    let d = Req::from("payments", "batch").to_entry(&a).decision.unwrap();
    assert_eq!((d.allowed, d.action, d.policy.as_deref(), d.rule), (false, AuthzAction::Deny, Some("payments/no-batch"), Some(1)));
    assert!(Req::from("payments", "api").to_entry(&a).allowed());
}

#[test]
fn empty_rules_as_istio_documents_them() {
    let policy = |action: &str, rules: &str| {
        authorizer(&format!(
            "apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: {{name: p, namespace: payments}}
spec:
  targetRef: {{kind: ServiceEntry, name: stripe}}
  action: {action}
{rules}"
        ))
    };
    let r = Req::from("payments", "api");
    assert!(!r.to_entry(&policy("ALLOW", "")).allowed(), "ALLOW without rules denies everything");
    assert!(r.to_entry(&policy("ALLOW", "  rules: [{}]\n")).allowed(), "rules: [{{}}] allows everything");
    assert!(r.to_entry(&policy("DENY", "")).allowed(), "DENY without rules never matches");
    assert!(!r.to_entry(&policy("DENY", "  rules: [{}]\n")).allowed(), "DENY rules: [{{}}] denies everything");
}

fn gateway_policy(action: &str, rule: &str) -> Authorizer {
    authorizer(&format!(
        "apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: {{name: egress, namespace: istio-system}}
spec:
  selector: {{matchLabels: {{istio: egressgateway}}}}
  action: {action}
  rules:
  - {rule}
"
    ))
}

fn at_gateway<'a>(l: &'a crate::config::Labels) -> Applies<'a> {
    Applies { workload: Some(("istio-system", l)), ..Applies::default() }
}

#[test]
fn http_fields_on_a_tls_stream_never_match_an_allow_and_are_ignored_by_a_deny() {
    let l = labels(&[("istio", "egressgateway")]);
    let allow = gateway_policy("ALLOW", "{from: [{source: {namespaces: [payments]}}], to: [{operation: {methods: [GET]}}]}");
    let tls = Req::from("payments", "api");
    assert!(!tls.ask(&allow, at_gateway(&l)).allowed(), "an ALLOW rule with methods never matches a TLS stream");
    assert!(Req::from("payments", "api").get("/").ask(&allow, at_gateway(&l)).allowed());
    let deny = gateway_policy("DENY", "{from: [{source: {namespaces: [shop]}}], to: [{operation: {paths: [/admin]}}]}");
    assert!(!Req::from("shop", "web").ask(&deny, at_gateway(&l)).allowed(), "a DENY rule ignores paths on a TLS stream");
    assert!(Req::from("payments", "api").ask(&deny, at_gateway(&l)).allowed());
    // The selector decides which workloads: another gateway is not subject.
    let other = labels(&[("istio", "ingressgateway")]);
    assert!(Req::from("shop", "web").ask(&deny, at_gateway(&other)).decision.is_none());
}

#[test]
fn principals_namespaces_and_ip_blocks_with_their_negations() {
    let l = labels(&[("istio", "egressgateway")]);
    let a = gateway_policy(
        "ALLOW",
        "{from: [{source: {principals: ['cluster.local/ns/payments/*'], notNamespaces: [payments-test], ipBlocks: [10.0.0.0/8], notIpBlocks: [10.9.0.0/16]}}]}",
    );
    assert!(Req::from("payments", "api").ask(&a, at_gateway(&l)).allowed());
    let mut blocked = Req::from("payments", "api");
    blocked.ip = "10.9.1.1".parse().unwrap();
    assert!(!blocked.ask(&a, at_gateway(&l)).allowed());
    let mut unauthenticated = Req::from("payments", "api");
    unauthenticated.principal = None;
    assert!(!unauthenticated.ask(&a, at_gateway(&l)).allowed());
    assert!(!Req::from("shop", "web").ask(&a, at_gateway(&l)).allowed());
}

#[test]
fn when_conditions_and_operations() {
    let l = labels(&[("istio", "egressgateway")]);
    let a = gateway_policy(
        "ALLOW",
        "{to: [{operation: {hosts: ['*.stripe.test'], ports: ['443'], methods: [GET, HEAD], notPaths: ['/internal/*']}}], when: [{key: 'request.headers[x-team]', values: [pay*]}, {key: destination.port, values: ['443']}]}",
    );
    let ok = Req::from("shop", "web").get("/v1/charges").header("x-team", "payments");
    assert!(ok.ask(&a, at_gateway(&l)).allowed());
    assert!(!Req::from("shop", "web").get("/v1/charges").ask(&a, at_gateway(&l)).allowed(), "header missing");
    assert!(!Req::from("shop", "web").get("/v1").method("POST").header("x-team", "pay").ask(&a, at_gateway(&l)).allowed());
    assert!(!Req::from("shop", "web").get("/internal/x").header("x-team", "pay").ask(&a, at_gateway(&l)).allowed());
    let mut other_host = Req::from("shop", "web").get("/").header("x-team", "pay");
    other_host.host = Some("evil.test".into());
    assert!(!other_host.ask(&a, at_gateway(&l)).allowed());
}

#[test]
fn custom_and_unsupported_fields_fail_closed() {
    let l = labels(&[("istio", "egressgateway")]);
    let custom = gateway_policy("CUSTOM", "{to: [{operation: {paths: [/admin*]}}]}");
    let d = Req::from("shop", "web").get("/admin").ask(&custom, at_gateway(&l)).decision.unwrap();
    assert_eq!((d.allowed, d.action), (false, AuthzAction::Custom));
    assert!(Req::from("shop", "web").get("/public").ask(&custom, at_gateway(&l)).allowed());
    let jwt_allow = gateway_policy("ALLOW", "{from: [{source: {requestPrincipals: ['*']}}]}");
    assert!(!Req::from("shop", "web").get("/").ask(&jwt_allow, at_gateway(&l)).allowed());
    let odd_deny = gateway_policy("DENY", "{from: [{source: {namespaces: [shop]}}], when: [{key: 'request.auth.claims[iss]', values: [x]}]}");
    assert!(!Req::from("shop", "web").get("/").ask(&odd_deny, at_gateway(&l)).allowed());
    assert!(Req::from("payments", "api").get("/").ask(&odd_deny, at_gateway(&l)).allowed());
}

#[test]
fn audit_marks_without_deciding() {
    let l = labels(&[("istio", "egressgateway")]);
    let a = gateway_policy("AUDIT", "{from: [{source: {namespaces: [shop]}}]}");
    let r = Req::from("shop", "web").ask(&a, at_gateway(&l));
    assert_eq!((r.decision, r.audited.as_deref()), (None, Some("istio-system/egress")));
    assert_eq!(Req::from("payments", "api").ask(&a, at_gateway(&l)).audited, None);
}

#[test]
fn a_gateway_target_applies_to_that_gateways_listeners() {
    let a = authorizer(
        "apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: {name: ingress-ips, namespace: web}
spec:
  targetRefs: [{kind: Gateway, group: networking.istio.io, name: public}]
  action: ALLOW
  rules: [{from: [{source: {remoteIpBlocks: [192.0.2.0/24]}}]}]
",
    );
    let gateways = [("web".to_string(), "public".to_string())];
    let on = Applies { gateways: &gateways, ..Applies::default() };
    let mut r = Req::from("web", "x");
    r.remote = "192.0.2.7".parse().unwrap();
    assert!(r.ask(&a, on).allowed());
    r.remote = "198.51.100.1".parse().unwrap();
    assert!(!r.ask(&a, on).allowed());
    let other = [("web".to_string(), "private".to_string())];
    assert!(r.ask(&a, Applies { gateways: &other, ..Applies::default() }).decision.is_none());
}
