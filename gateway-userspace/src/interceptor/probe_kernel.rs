//! Asks the running kernel for each feature in `probe::FEATURES`, by doing
//! the smallest thing that needs it: load a two-instruction program of a
//! type (with an expected attach type), create a map of a type, call a
//! helper from a program type (aya's probes: unknown helpers show in the
//! verifier log), and create a cgroup link on a descriptor that is not a
//! cgroup (`EBADF` once the command exists, `EINVAL` before).
//!
//! Nothing is attached and nothing outlives a probe.

use std::{
    io, mem,
    os::fd::{AsRawFd, FromRawFd, OwnedFd},
};

use aya::{
    maps::MapType,
    programs::ProgramType,
    sys::{BpfHelper, is_helper_supported, is_map_supported, is_program_supported},
};
use aya_obj::generated::{
    BPF_EXIT, BPF_JMP, BPF_K, BPF_MOV, BPF_ALU64, bpf_attach_type, bpf_attr, bpf_cmd, bpf_func_id, bpf_insn,
    bpf_prog_type,
};

use super::probe::{FEATURES, Feature, Outcome};

/// Every feature's outcome on this kernel; keys in `pretend` read as missing.
pub fn probe_all(pretend: &[&str]) -> Vec<(Feature, Outcome)> {
    FEATURES
        .iter()
        .map(|f| (*f, if pretend.contains(&f.key) { Outcome::Missing } else { probe_one(f.key) }))
        .collect()
}

/// The running kernel's release, as `uname -r` prints it.
pub fn kernel_release() -> String {
    std::fs::read_to_string("/proc/sys/kernel/osrelease").map_or_else(|_| "(unknown)".into(), |r| r.trim().to_owned())
}

fn probe_one(key: &str) -> Outcome {
    use bpf_attach_type::*;
    use bpf_func_id::*;
    let sock_addr = ProgramType::CgroupSockAddr;
    let skb = ProgramType::CgroupSkb;
    let ops = ProgramType::SockOps;
    match key {
        "prog-cgroup-skb" => program(skb),
        "prog-sock-ops" => program(ops),
        "attach-connect" => attach_types(&[BPF_CGROUP_INET4_CONNECT, BPF_CGROUP_INET6_CONNECT]),
        "attach-sendmsg" => attach_types(&[BPF_CGROUP_UDP4_SENDMSG, BPF_CGROUP_UDP6_SENDMSG]),
        "attach-recvmsg" => attach_types(&[BPF_CGROUP_UDP4_RECVMSG, BPF_CGROUP_UDP6_RECVMSG]),
        "attach-getpeername" => attach_types(&[BPF_CGROUP_INET4_GETPEERNAME, BPF_CGROUP_INET6_GETPEERNAME]),
        "map-sk-storage" => map(MapType::SkStorage),
        "map-ringbuf" => map(MapType::RingBuf),
        "cgroup-link" => cgroup_link(),
        "helper-current-cgroup-id" => helper(sock_addr, BPF_FUNC_get_current_cgroup_id),
        "helper-current-ancestor-cgroup-id" => helper(sock_addr, BPF_FUNC_get_current_ancestor_cgroup_id),
        "helper-current-pid-tgid" => helper(sock_addr, BPF_FUNC_get_current_pid_tgid),
        "helper-sk-storage-sock-addr" => helper(sock_addr, BPF_FUNC_sk_storage_get),
        "helper-sk-storage-sock-ops" => helper(ops, BPF_FUNC_sk_storage_get),
        "helper-cb-flags-set" => helper(ops, BPF_FUNC_sock_ops_cb_flags_set),
        "helper-skb-cgroup-id" => helper(skb, BPF_FUNC_skb_cgroup_id),
        "helper-skb-ancestor-cgroup-id" => helper(skb, BPF_FUNC_skb_ancestor_cgroup_id),
        "helper-sk-fullsock" => helper(skb, BPF_FUNC_sk_fullsock),
        "helper-sk-storage-skb" => helper(skb, BPF_FUNC_sk_storage_get),
        "helper-skb-load-bytes" => helper(skb, BPF_FUNC_skb_load_bytes),
        "map-sockhash" => map(MapType::SockHash),
        "prog-sk-skb" => program(ProgramType::SkSkb),
        "helper-sk-redirect-hash" => helper(ProgramType::SkSkb, BPF_FUNC_sk_redirect_hash),
        "helper-socket-cookie-skb" => helper(ProgramType::SkSkb, BPF_FUNC_get_socket_cookie),
        other => Outcome::Unknown(format!("no probe for {other}")),
    }
}

fn yes(supported: bool) -> Outcome {
    if supported { Outcome::Available } else { Outcome::Missing }
}

fn program(kind: ProgramType) -> Outcome {
    is_program_supported(kind).map_or_else(|e| Outcome::Unknown(e.to_string()), yes)
}

fn map(kind: MapType) -> Outcome {
    is_map_supported(kind).map_or_else(|e| Outcome::Unknown(e.to_string()), yes)
}

fn helper(kind: ProgramType, id: BpfHelper) -> Outcome {
    is_helper_supported(kind, id).map_or_else(|e| Outcome::Unknown(e.to_string()), yes)
}

/// A `cgroup_sock_addr` program loads with each expected attach type: the
/// kernel refuses an attach type it does not know with `EINVAL`.
fn attach_types(types: &[bpf_attach_type]) -> Outcome {
    for kind in types {
        match load_sock_addr(*kind) {
            Ok(_) => {}
            Err(e) if e.raw_os_error() == Some(libc::EINVAL) => return Outcome::Missing,
            Err(e) => return Outcome::Unknown(e.to_string()),
        }
    }
    Outcome::Available
}

/// `BPF_LINK_CREATE` with a real program and a target that is no cgroup:
/// a kernel with cgroup links looks the target up and answers `EBADF`; one
/// without the command answers `EINVAL`.
fn cgroup_link() -> Outcome {
    let kind = bpf_attach_type::BPF_CGROUP_INET4_CONNECT;
    let prog = match load_sock_addr(kind) {
        Ok(fd) => fd,
        Err(e) if e.raw_os_error() == Some(libc::EINVAL) => return Outcome::Missing,
        Err(e) => return Outcome::Unknown(e.to_string()),
    };
    let mut attr = zeroed_attr();
    attr.link_create.__bindgen_anon_1.prog_fd = prog.as_raw_fd() as u32;
    attr.link_create.__bindgen_anon_2.target_fd = u32::MAX;
    attr.link_create.attach_type = kind as u32;
    match bpf(bpf_cmd::BPF_LINK_CREATE, &mut attr) {
        Err(e) if e.raw_os_error() == Some(libc::EBADF) => Outcome::Available,
        Err(e) if e.raw_os_error() == Some(libc::EINVAL) => Outcome::Missing,
        Err(e) => Outcome::Unknown(e.to_string()),
        Ok(fd) => {
            // SAFETY: a new descriptor nothing else owns; closed at once.
            drop(unsafe { OwnedFd::from_raw_fd(fd) });
            Outcome::Unknown("a link was created on a non-cgroup descriptor".into())
        }
    }
}

/// `r0 = 1; exit` as a `cgroup_sock_addr` program for `kind`.
fn load_sock_addr(kind: bpf_attach_type) -> io::Result<OwnedFd> {
    let insns = [insn((BPF_ALU64 | BPF_MOV | BPF_K) as u8, 1), insn((BPF_JMP | BPF_EXIT) as u8, 0)];
    let license = c"GPL";
    let mut attr = zeroed_attr();
    // SAFETY: writing plain integer fields of the prog-load member.
    let load = unsafe { &mut attr.__bindgen_anon_3 };
    load.prog_type = bpf_prog_type::BPF_PROG_TYPE_CGROUP_SOCK_ADDR as u32;
    load.expected_attach_type = kind as u32;
    load.insn_cnt = insns.len() as u32;
    load.insns = insns.as_ptr() as u64;
    load.license = license.as_ptr() as u64;
    let fd = bpf(bpf_cmd::BPF_PROG_LOAD, &mut attr)?;
    // SAFETY: BPF_PROG_LOAD returns a new descriptor nothing else owns.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

fn insn(code: u8, imm: i32) -> bpf_insn {
    // SAFETY: plain integers and a bitfield; all-zero is valid.
    let mut insn: bpf_insn = unsafe { mem::zeroed() };
    insn.code = code;
    insn.imm = imm;
    insn
}

fn zeroed_attr() -> bpf_attr {
    // SAFETY: a union of plain integer structs; all-zero is what the kernel
    // expects in every field a command does not use.
    unsafe { mem::zeroed() }
}

fn bpf(cmd: bpf_cmd, attr: &mut bpf_attr) -> io::Result<i32> {
    // SAFETY: `attr` is a valid bpf_attr of the size given; its pointers
    // (instructions, license) outlive the call.
    let ret = unsafe { libc::syscall(libc::SYS_bpf, cmd as libc::c_long, attr as *mut bpf_attr, mem::size_of::<bpf_attr>()) };
    if ret < 0 { Err(io::Error::last_os_error()) } else { Ok(ret as i32) }
}
