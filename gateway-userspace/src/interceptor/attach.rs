//! Attach the pinned programs to the requested cgroups and pin each link
//! under `links/<cgroup inode>/`. Links already pinned are kept as they are,
//! so a restart leaves no gap; cgroups no longer requested are detached.

use std::{
    collections::BTreeMap,
    fs::{self, File},
    path::{Path, PathBuf},
};

use aya::programs::{
    CgroupAttachMode, CgroupSkb, CgroupSkbAttachType, CgroupSockAddr, CgroupSockAddrAttachType, SockOps,
    links::{FdLink, PinnedLink},
};


use super::{
    InterceptorError, PinLayout,
    pins::{PROGRAMS, io},
};

pub fn reconcile(layout: &PinLayout, cgroups: &[PathBuf]) -> Result<(), InterceptorError> {
    let mut wanted = BTreeMap::new();
    for cg in cgroups {
        wanted.insert(super::cgroups::cgroup_id(cg)?, cg.clone());
    }
    let links = layout.links_dir();
    for entry in fs::read_dir(&links).map_err(|e| io(&links, e))? {
        let entry = entry.map_err(|e| io(&links, e))?;
        let keep = entry
            .file_name()
            .to_str()
            .and_then(|n| n.parse::<u64>().ok())
            .is_some_and(|ino| wanted.contains_key(&ino));
        if !keep {
            tracing::info!(link_dir = %entry.path().display(), "detaching cgroup no longer intercepted");
            fs::remove_dir_all(entry.path()).map_err(|e| io(&entry.path(), e))?;
        }
    }
    for (ino, cg) in &wanted {
        let dir = layout.cgroup_links(*ino);
        fs::create_dir_all(&dir).map_err(|e| io(&dir, e))?;
        let cgroup = File::open(cg).map_err(|e| io(cg, e))?;
        for name in PROGRAMS {
            let pin = dir.join(name);
            if pin.exists() {
                if PinnedLink::from_pin(&pin).is_ok() {
                    continue;
                }
                fs::remove_file(&pin).map_err(|e| io(&pin, e))?;
            }
            attach_one(layout, name, &cgroup, &pin)?;
        }
        tracing::info!(cgroup = %cg.display(), "intercepting");
    }
    Ok(())
}

fn attach_one(layout: &PinLayout, name: &str, cgroup: &File, pin: &Path) -> Result<(), InterceptorError> {
    let prog_err = |source| InterceptorError::Program { name: name.to_string(), source };
    let prog_path = layout.prog(name);
    let link: FdLink = if name == "gw_sockops" {
        let mut p = SockOps::from_pin(&prog_path).map_err(prog_err)?;
        let id = p.attach(cgroup, CgroupAttachMode::Single).map_err(prog_err)?;
        p.take_link(id).map_err(prog_err)?.try_into()
    } else if name == "gw_egress" {
        let mut p = CgroupSkb::from_pin(&prog_path, CgroupSkbAttachType::Egress).map_err(prog_err)?;
        let id = p.attach(cgroup, CgroupSkbAttachType::Egress, CgroupAttachMode::Single).map_err(prog_err)?;
        p.take_link(id).map_err(prog_err)?.try_into()
    } else {
        let mut p = CgroupSockAddr::from_pin(&prog_path, attach_type(name)).map_err(prog_err)?;
        let id = p.attach(cgroup, CgroupAttachMode::Single).map_err(prog_err)?;
        p.take_link(id).map_err(prog_err)?.try_into()
    }
    .map_err(|source| InterceptorError::Link { path: pin.to_path_buf(), source })?;
    link.pin(pin)
        .map_err(|source| InterceptorError::Pin { path: pin.to_path_buf(), source })?;
    Ok(())
}

fn attach_type(name: &str) -> CgroupSockAddrAttachType {
    match name {
        "gw_connect4" => CgroupSockAddrAttachType::Connect4,
        "gw_connect6" => CgroupSockAddrAttachType::Connect6,
        "gw_getpeername4" => CgroupSockAddrAttachType::GetPeerName4,
        "gw_getpeername6" => CgroupSockAddrAttachType::GetPeerName6,
        "gw_sendmsg4" => CgroupSockAddrAttachType::UDPSendMsg4,
        "gw_sendmsg6" => CgroupSockAddrAttachType::UDPSendMsg6,
        "gw_recvmsg4" => CgroupSockAddrAttachType::UDPRecvMsg4,
        "gw_recvmsg6" => CgroupSockAddrAttachType::UDPRecvMsg6,
        other => unreachable!("no sock_addr attach type for {other}"),
    }
}
