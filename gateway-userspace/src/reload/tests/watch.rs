//! Reload triggers: a ConfigMap-style symlink swap changes the fingerprint.

use std::fs;

use crate::reload::watch::fingerprint;

#[test]
fn a_configmap_style_symlink_swap_changes_the_fingerprint() {
    let dir = std::env::temp_dir().join(format!("gw-fp-{}", std::process::id()));
    let _ = fs::remove_dir_all(&dir);
    fs::create_dir_all(dir.join("..v1")).unwrap();
    fs::create_dir_all(dir.join("..v2")).unwrap();
    fs::write(dir.join("..v1/a.yaml"), "x: 1\n").unwrap();
    fs::write(dir.join("..v2/a.yaml"), "x: 1\n").unwrap();
    std::os::unix::fs::symlink("..v1", dir.join("..data")).unwrap();
    std::os::unix::fs::symlink("..data/a.yaml", dir.join("a.yaml")).unwrap();
    let before = fingerprint(&[dir.join("a.yaml")]);
    // Swap ..data atomically, as the kubelet does.
    std::os::unix::fs::symlink("..v2", dir.join("..data_tmp")).unwrap();
    fs::rename(dir.join("..data_tmp"), dir.join("..data")).unwrap();
    let after = fingerprint(&[dir.join("a.yaml")]);
    fs::remove_dir_all(&dir).unwrap();
    assert_ne!(before, after);
}
