//! Tests of `pod_cgroups.rs`.

use crate::kubernetes::pod_cgroups::*;
use std::{os::unix::fs::MetadataExt, path::Path};

const UID: &str = "0c1d2e3f-4a5b-6c7d-8e9f-a0b1c2d3e4f5";

#[test]
fn pod_uids_parse_from_every_layout() {
    let systemd = format!("kubepods-burstable-pod{}.slice", UID.replace('-', "_"));
    assert_eq!(pod_uid(&systemd).as_deref(), Some(UID));
    let guaranteed = format!("kubepods-pod{}.slice", UID.replace('-', "_"));
    assert_eq!(pod_uid(&guaranteed).as_deref(), Some(UID));
    let kind = format!("kubelet-kubepods-besteffort-pod{}.slice", UID.replace('-', "_"));
    assert_eq!(pod_uid(&kind).as_deref(), Some(UID));
    assert_eq!(pod_uid(&format!("pod{UID}")).as_deref(), Some(UID));
    for not_a_pod in ["kubepods-burstable.slice", "besteffort", "cri-containerd-abc.scope", "podnotauid", "pod"] {
        assert_eq!(pod_uid(not_a_pod), None, "{not_a_pod}");
    }
}

#[test]
fn a_scan_attributes_containers_to_their_pod_in_both_drivers() {
    let tmp = std::env::temp_dir().join(format!("pod-cgroups-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&tmp);
    let u = UID.replace('-', "_");
    let systemd_pod = tmp.join(format!("kubepods.slice/kubepods-besteffort.slice/kubepods-besteffort-pod{u}.slice"));
    let systemd_ctr = systemd_pod.join("cri-containerd-0123abcd.scope");
    let other = "11111111-2222-3333-4444-555555555555";
    let cgroupfs_pod = tmp.join(format!("kubepods/pod{other}"));
    let cgroupfs_ctr = cgroupfs_pod.join("0123abcd");
    for d in [&systemd_ctr, &cgroupfs_ctr] {
        std::fs::create_dir_all(d).unwrap();
    }
    assert!(matches!(find_pods_root(&tmp), Err(PodCgroupError::Ambiguous(_))));
    let scan = PodCgroupScan::scan(&tmp.join("kubepods.slice"));
    let ino = |p: &Path| std::fs::metadata(p).unwrap().ino();
    assert_eq!(scan.owner.get(&ino(&systemd_ctr)).map(String::as_str), Some(UID));
    assert_eq!(scan.pods.get(UID).map(|(id, _)| *id), Some(ino(&systemd_pod)));
    let scan = PodCgroupScan::scan(&tmp.join("kubepods"));
    assert_eq!(scan.owner.get(&ino(&cgroupfs_ctr)).map(String::as_str), Some(other));
    std::fs::remove_dir_all(tmp.join("kubepods")).unwrap();
    assert_eq!(find_pods_root(&tmp).unwrap(), tmp.join("kubepods.slice"));
    assert!(check_not_root(&tmp, &tmp).is_err());
    std::fs::remove_dir_all(&tmp).unwrap();
}
