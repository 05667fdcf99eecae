//! Gateway servers: credential paths resolve lexically.

use std::path::{Path, PathBuf};

use crate::config::resources::gateway::*;

#[test]
fn paths_resolve_lexically() {
    let f = Path::new("/a/b/gw.yaml");
    assert_eq!(resolve_path(f, "c.pem"), PathBuf::from("/a/b/c.pem"));
    assert_eq!(
        resolve_path(f, "../certs/c.pem"),
        PathBuf::from("/a/certs/c.pem")
    );
    assert_eq!(resolve_path(f, "/etc/c.pem"), PathBuf::from("/etc/c.pem"));
    assert_eq!(
        resolve_path(Path::new("gw.yaml"), "./c.pem"),
        PathBuf::from("c.pem")
    );
    assert_eq!(
        resolve_path(Path::new("gw.yaml"), "../c.pem"),
        PathBuf::from("../c.pem")
    );
}
