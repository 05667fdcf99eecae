//! Tests of `interceptor/cgroups.rs`.

use crate::interceptor::cgroups::*;
use std::path::Path;

#[test]
fn levels_count_from_the_mount() {
    let m = Path::new("/sys/fs/cgroup");
    assert_eq!(level(m, m), Some(0));
    assert_eq!(level(m, Path::new("/sys/fs/cgroup/kubepods.slice/kubepods-besteffort.slice")), Some(2));
    assert_eq!(level(m, Path::new("/elsewhere")), None);
}
