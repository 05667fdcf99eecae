//! One request in, one answer out: checks the bearer token, routes discovery and resource paths,
//! and runs get, list, create, update, patch and delete against the store. A watch is handed back
//! as a [`WatchPlan`] for the connection to stream.

use serde_json::{Value, json};

use super::discovery;
use super::identity::Identity;
use super::list::{self, Selection};
use super::meta_only;
use super::objects::{Target, prepare};
use super::patch::{self, PatchKind};
use super::resources::ResourceType;
use super::routes::{self, ApiRequest, ResourcePath, Route};
use super::shared::Shared;
use super::status::ApiError;
use super::store::{Part, Store};
use super::watch::WatchPlan;
use super::wire::Request;

/// The answer to one request.
pub enum Reply {
    Json {
        code: u16,
        body: Value,
        content_type: &'static str,
    },
    Watch(WatchPlan),
}

impl Reply {
    fn ok(code: u16, body: Value) -> Reply {
        Reply::Json {
            code,
            body,
            content_type: "application/json",
        }
    }

    fn error(e: &ApiError) -> Reply {
        Reply::ok(e.code, e.to_status())
    }

    /// The same answer with objects reduced to `PartialObjectMetadata`.
    fn metadata_only(self) -> Reply {
        match self {
            Reply::Json {
                code,
                body,
                content_type,
            } => Reply::Json {
                code,
                body: meta_only::reduce(body),
                content_type,
            },
            Reply::Watch(plan) => Reply::Watch(plan.metadata_only()),
        }
    }

    pub fn code(&self) -> u16 {
        match self {
            Reply::Json { code, .. } => *code,
            Reply::Watch(_) => 200,
        }
    }
}

/// Answers `req` and describes it for the request log.
pub fn dispatch(shared: &Shared, req: &Request) -> (Reply, ApiRequest) {
    let route = routes::parse(&req.path);
    let mut log = ApiRequest {
        verb: req.method.to_ascii_lowercase(),
        group: String::new(),
        version: String::new(),
        resource: String::new(),
        subresource: String::new(),
        namespace: None,
        name: None,
        user: String::new(),
        path: req.path.clone(),
        query: req.query.clone(),
        code: 0,
    };
    if let Route::Resource(p) = &route {
        log.verb = routes::rbac_verb(&req.method, p.name.is_some(), req.flag("watch")).to_string();
        log.group.clone_from(&p.group);
        log.version.clone_from(&p.version);
        log.resource.clone_from(&p.plural);
        log.subresource = p.subresource.clone().unwrap_or_default();
        log.namespace.clone_from(&p.namespace);
        log.name.clone_from(&p.name);
    }
    let user = shared.authenticate(req.header("authorization"));
    if let Some(user) = &user {
        log.user.clone_from(&user.username);
    }
    let reply = if let Some(user) = user {
        match route {
            Route::Resource(p) => match resource(shared, &p, req, &user) {
                Ok(reply) if meta_only::wanted(req.header("accept")) => reply.metadata_only(),
                Ok(reply) => reply,
                Err(e) => Reply::error(&e),
            },
            other => discovery_reply(shared, &other, req).unwrap_or_else(|e| Reply::error(&e)),
        }
    } else {
        Reply::error(&ApiError::unauthorized())
    };
    log.code = reply.code();
    (reply, log)
}

fn discovery_reply(shared: &Shared, route: &Route, req: &Request) -> Result<Reply, ApiError> {
    if req.method != "GET" {
        return Err(ApiError::method_not_allowed(&req.method));
    }
    let served = shared.store().served_types();
    let aggregated = discovery::wants_aggregated(req.header("accept"));
    let body = match route {
        Route::Version => discovery::version(),
        Route::CoreVersions | Route::Groups if aggregated => {
            let body = discovery::aggregated(&served, *route == Route::CoreVersions);
            return Ok(Reply::Json {
                code: 200,
                body,
                content_type: discovery::AGGREGATED_V2,
            });
        }
        Route::CoreVersions => discovery::core_versions(&shared.address.to_string()),
        Route::Groups => discovery::group_list(&served),
        Route::Group(group) => discovery::group(&served, group)?,
        Route::GroupVersion { group, version } => {
            discovery::resource_list(&served, group, version)?
        }
        Route::Resource(_) | Route::Unknown => return Err(ApiError::no_such_resource()),
    };
    Ok(Reply::ok(200, body))
}

fn resource(
    shared: &Shared,
    p: &ResourcePath,
    req: &Request,
    user: &Identity,
) -> Result<Reply, ApiError> {
    let rt = shared
        .store()
        .served(&p.group, &p.version, &p.plural)
        .ok_or_else(ApiError::no_such_resource)?;
    let scope_ok = match (&p.namespace, &p.name) {
        (Some(_), _) => rt.namespaced,
        (None, Some(_)) => !rt.namespaced,
        (None, None) => !rt.namespaced || req.method == "GET", // lists and watches across namespaces
    };
    if !scope_ok {
        return Err(ApiError::no_such_resource());
    }
    let part = match p.subresource.as_deref() {
        None => Part::Main,
        Some(sub) if rt.has_subresource(sub) && p.name.is_some() => {
            if !matches!(req.method.as_str(), "GET" | "PUT" | "PATCH") {
                return Err(ApiError::method_not_allowed(&req.method));
            }
            if sub == "approval" {
                Part::Approval
            } else {
                Part::Status
            }
        }
        Some(_) => return Err(ApiError::no_such_resource()),
    };
    if req.param("dryRun").is_some() {
        return Err(ApiError::bad_request(
            "dryRun is not supported by this test API server",
        ));
    }
    let ns = p.namespace.as_deref();
    let target = Target {
        namespace: ns,
        name: p.name.as_deref(),
    };
    let name = p.name.as_deref();
    match (req.method.as_str(), name) {
        ("GET", _) if req.flag("watch") => Ok(Reply::Watch(WatchPlan::parse(
            &shared.store(),
            rt,
            ns,
            name,
            req,
        )?)),
        ("GET", Some(name)) => {
            let store = shared.store();
            let object = store
                .get(rt, ns.unwrap_or(""), name)
                .ok_or_else(|| ApiError::not_found(rt, name))?;
            Ok(Reply::ok(200, object.clone()))
        }
        ("GET", None) => {
            let selection = Selection::parse(rt, ns, req)?;
            Ok(Reply::ok(
                200,
                list::list(&shared.store(), rt, &selection, req)?,
            ))
        }
        ("POST", None) => {
            let object = prepare(rt, &target, body_json(req)?, true)?;
            let object = shared.write(|s| s.create(rt, with_defaults(rt, object, user)))?;
            Ok(Reply::ok(201, object))
        }
        ("PUT", Some(_)) => {
            let object = prepare(rt, &target, body_json(req)?, false)?;
            Ok(Reply::ok(
                200,
                shared.write(|s| s.update(rt, object, part))?,
            ))
        }
        ("PATCH", Some(name)) => patch_object(shared, rt, &target, name, part, req, user),
        ("DELETE", Some(name)) => {
            let preconditions = delete_preconditions(req)?;
            shared.write(|s| {
                let current = s
                    .get(rt, ns.unwrap_or(""), name)
                    .ok_or_else(|| ApiError::not_found(rt, name))?;
                check_preconditions(rt, name, current, &preconditions)?;
                s.delete(rt, ns.unwrap_or(""), name)
                    .map(|o| Reply::ok(200, o))
            })
        }
        ("DELETE", None) => {
            let selection = Selection::parse(rt, ns, req)?;
            shared.write(|s| delete_collection(s, rt, &selection))
        }
        (method, _) => Err(ApiError::method_not_allowed(method)),
    }
}

fn patch_object(
    shared: &Shared,
    rt: &'static ResourceType,
    target: &Target,
    name: &str,
    part: Part,
    req: &Request,
    user: &Identity,
) -> Result<Reply, ApiError> {
    let kind = PatchKind::from_content_type(req.header("content-type").unwrap_or(""))?;
    if kind == PatchKind::Apply && req.param("fieldManager").is_none_or(str::is_empty) {
        return Err(ApiError::invalid(
            rt,
            name,
            "fieldManager: Required value: is required for apply patch",
        ));
    }
    shared.write(|s| {
        let current = s.get(rt, target.namespace.unwrap_or(""), name).cloned();
        match current {
            None if kind == PatchKind::Apply && part == Part::Main => {
                let object = prepare(rt, target, patch::apply(kind, None, &req.body)?, false)?;
                Ok(Reply::ok(201, s.create(rt, with_defaults(rt, object, user))?))
            }
            None => Err(ApiError::not_found(rt, name)),
            Some(current) => {
                let patched = prepare(
                    rt,
                    target,
                    patch::apply(kind, Some(&current), &req.body)?,
                    false,
                )?;
                Ok(Reply::ok(200, s.update(rt, patched, part)?))
            }
        }
    })
}

fn body_json(req: &Request) -> Result<Value, ApiError> {
    serde_json::from_slice(&req.body)
        .map_err(|e| ApiError::bad_request(format!("error decoding body: {e}")))
}

/// What the real server fills in on create for the kinds whose defaults matter here: a CSR's
/// requester fields come from the caller's credentials, whatever the body said.
fn with_defaults(rt: &ResourceType, mut object: Value, user: &Identity) -> Value {
    match (rt.group, rt.kind) {
        ("certificates.k8s.io", "CertificateSigningRequest") => {
            user.stamp_csr(&mut object);
            if object["spec"].get("usages").is_none() {
                object["spec"]["usages"] = json!(["digital signature", "key encipherment"]);
            }
        }
        ("", "Namespace") if object.pointer("/status/phase").is_none() => {
            object["status"] = json!({ "phase": "Active" });
        }
        _ => {}
    }
    object
}

/// `preconditions` of a DeleteOptions body: (uid, resourceVersion).
fn delete_preconditions(req: &Request) -> Result<(Option<String>, Option<String>), ApiError> {
    if req.body.is_empty() {
        return Ok((None, None));
    }
    let options = body_json(req)?;
    let get = |f: &str| {
        options
            .pointer(&format!("/preconditions/{f}"))
            .and_then(Value::as_str)
            .map(str::to_string)
    };
    Ok((get("uid"), get("resourceVersion")))
}

fn check_preconditions(
    rt: &ResourceType,
    name: &str,
    current: &Value,
    pre: &(Option<String>, Option<String>),
) -> Result<(), ApiError> {
    let meta = &current["metadata"];
    let holds = |want: &Option<String>, field: &str| {
        want.as_deref()
            .is_none_or(|w| meta[field].as_str() == Some(w))
    };
    if holds(&pre.0, "uid") && holds(&pre.1, "resourceVersion") {
        Ok(())
    } else {
        Err(ApiError::conflict(rt, name))
    }
}

fn delete_collection(
    s: &mut Store,
    rt: &'static ResourceType,
    selection: &Selection,
) -> Result<Reply, ApiError> {
    let doomed: Vec<Value> = s
        .snapshot(rt, None)?
        .into_iter()
        .filter(|o| selection.matches(o))
        .collect();
    let mut items = Vec::new();
    for object in doomed {
        let (ns, name) = super::store::object_key(&object);
        items.push(s.delete(rt, &ns, &name)?);
    }
    let list = json!({ "kind": format!("{}List", rt.kind), "apiVersion": rt.api_version(), "metadata": { "resourceVersion": s.rv().to_string() }, "items": items });
    Ok(Reply::ok(200, list))
}
