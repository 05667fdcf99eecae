//! The few bpf(2) commands aya 0.14 does not expose for cgroup links: open a
//! pin as a raw descriptor, read a link's ids, open a program by id, and
//! swap the program inside a link (`BPF_LINK_UPDATE`).

use std::{
    ffi::CString,
    io, mem,
    os::{
        fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd},
        unix::ffi::OsStrExt,
    },
    path::Path,
};

use aya_obj::generated::{BPF_F_REPLACE, bpf_attr, bpf_cmd, bpf_link_info};

/// A link as the kernel describes it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LinkIds {
    pub link: u32,
    pub program: u32,
}

/// `BPF_OBJ_GET`: a descriptor of whatever is pinned at `path`.
pub fn obj_get(path: &Path) -> io::Result<OwnedFd> {
    let name = CString::new(path.as_os_str().as_bytes()).map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e))?;
    let mut attr = zeroed_attr();
    attr.__bindgen_anon_4.pathname = name.as_ptr() as u64;
    fd_command(bpf_cmd::BPF_OBJ_GET, &mut attr)
}

/// `BPF_PROG_GET_FD_BY_ID`.
pub fn prog_fd_by_id(id: u32) -> io::Result<OwnedFd> {
    let mut attr = zeroed_attr();
    attr.__bindgen_anon_6.__bindgen_anon_1.prog_id = id;
    fd_command(bpf_cmd::BPF_PROG_GET_FD_BY_ID, &mut attr)
}

/// `BPF_OBJ_GET_INFO_BY_FD` on a link: its id and its program's.
pub fn link_ids(link: BorrowedFd<'_>) -> io::Result<LinkIds> {
    // SAFETY: plain integers and unions of them; all-zero is a valid value.
    let mut info: bpf_link_info = unsafe { mem::zeroed() };
    let mut attr = zeroed_attr();
    attr.info.bpf_fd = link.as_raw_fd() as u32;
    attr.info.info = (&raw mut info) as u64;
    attr.info.info_len = mem::size_of::<bpf_link_info>() as u32;
    command(bpf_cmd::BPF_OBJ_GET_INFO_BY_FD, &mut attr)?;
    Ok(LinkIds { link: info.id, program: info.prog_id })
}

/// `BPF_LINK_UPDATE` with `BPF_F_REPLACE`: puts `new` into the link, in one
/// step, only if the link still holds `expected`; else `EPERM`. The link stays
/// attached throughout, so the hook never runs without a program.
pub fn link_update(link: BorrowedFd<'_>, new: BorrowedFd<'_>, expected: BorrowedFd<'_>) -> io::Result<()> {
    let mut attr = zeroed_attr();
    attr.link_update.link_fd = link.as_raw_fd() as u32;
    attr.link_update.__bindgen_anon_1.new_prog_fd = new.as_raw_fd() as u32;
    attr.link_update.__bindgen_anon_2.old_prog_fd = expected.as_raw_fd() as u32;
    attr.link_update.flags = BPF_F_REPLACE;
    command(bpf_cmd::BPF_LINK_UPDATE, &mut attr)
}

fn zeroed_attr() -> bpf_attr {
    // SAFETY: a union of plain integer structs; all-zero is what the kernel
    // expects in every field a command does not use.
    unsafe { mem::zeroed() }
}

fn raw(cmd: bpf_cmd, attr: &mut bpf_attr) -> io::Result<i64> {
    // SAFETY: `attr` is a valid, fully initialised bpf_attr of the size given;
    // every pointer in it (path, info) outlives the call.
    let ret = unsafe { libc::syscall(libc::SYS_bpf, cmd as libc::c_long, attr as *mut bpf_attr, mem::size_of::<bpf_attr>()) };
    if ret < 0 { Err(io::Error::last_os_error()) } else { Ok(ret) }
}

fn command(cmd: bpf_cmd, attr: &mut bpf_attr) -> io::Result<()> {
    raw(cmd, attr).map(|_| ())
}

fn fd_command(cmd: bpf_cmd, attr: &mut bpf_attr) -> io::Result<OwnedFd> {
    let fd = raw(cmd, attr)?;
    let fd = i32::try_from(fd).map_err(|_| io::Error::new(io::ErrorKind::InvalidData, format!("{cmd:?} returned {fd}")))?;
    // SAFETY: these commands return a new descriptor that nothing else owns.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}
