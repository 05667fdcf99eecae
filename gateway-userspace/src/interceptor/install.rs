//! Puts this build's kernel programs in place: on a first start, and in
//! place of another build's while their links stay attached (a rolling
//! update), with no moment at which a hook runs no program.
//!
//! The order, and why:
//! 1. Load the object, keeping every pinned map whose definition is
//!    unchanged (`map_reuse.rs`): original destinations (`ORIG_SK`,
//!    `ORIG_TUPLE`), accepted sockets (`INBOUND_SK`), exemptions and the
//!    relay's maps carry over, shared by old and new programs alike.
//! 2. Fill what userspace owns in maps that are fresh (the proxy settings;
//!    the exemptions, copied when their types are unchanged) before any
//!    program can read them.
//! 3. Attach the new relay verdict to `RELAY_SOCKS`: it replaces the old one
//!    in one step; sockets already in the map keep the program they joined with.
//! 4. Swap the program inside every pinned link with `BPF_LINK_UPDATE`
//!    (`BPF_F_REPLACE`: only if the link still holds the program seen). A
//!    link is never detached, so every connect() meets an old or a new
//!    program, never none. Links of hooks this build lacks are removed; new
//!    hooks are attached afterwards by `attach.rs`, from the new pins.
//! 5. Replace the program pins and the fresh maps' pins (pinned in
//!    `staging/`, then renamed over), remove pins this build lacks, and
//!    write the stamp last: a start cut short anywhere before it is redone
//!    by the next one.
//!
//! With unchanged maps, old and new programs see the same state, so a
//! connection whose connect() ran the old `gw_connect4` and whose
//! establishment runs the new `gw_sockops` is served as any other. A map
//! whose layout changed cannot be shared: old programs keep the old map, new
//! ones use a fresh one, and for the short while a cgroup's links hold both,
//! a connection that meets both halves fails closed. If `ORIG_SK` changed,
//! its record is not found at establishment (or by `getpeername`): the
//! proxy finds no original destination and refuses it. If `ORIG_TUPLE`
//! changed, a proxy of the old build still running finds nothing for new
//! connections and refuses them. If `INBOUND_SK` changed, replies on
//! connections a pod accepted before the swap are dropped by the new
//! backstop. Nothing is let through: a missing record means no original
//! destination for the proxy or no inbound mark for the backstop, both
//! refusals. Only such layout changes cost connections; a fresh map that
//! userspace fills (step 2) costs none.

use std::{fs, io, os::fd::AsFd, path::Path};

use gateway_common::{ProxyConfig, map_names};

use super::{
    InterceptorError, PinLayout, bpf_syscall,
    load::{Build, programs},
    pins::{PROGRAMS, io},
};

/// Loads this build and puts it in place of whatever is pinned under `layout`.
pub fn install_build(layout: &PinLayout, cfg: &ProxyConfig, relay: bool, log_level: u8) -> Result<(), InterceptorError> {
    let mut build = Build::load(layout, relay, log_level)?;
    build.set_proxy_config(cfg)?;
    if build.plan.fresh.contains_key(map_names::EXEMPT_CGROUPS) {
        let carried = build.carry_exemptions(layout)?;
        if carried > 0 {
            tracing::info!(carried, "exemptions copied into the new exemption map");
        }
    }
    if build.has_relay() {
        build.attach_relay()?;
    }
    let swapped = swap_links(layout, &build)?;
    replace_pins(layout, &mut build)?;
    tracing::info!(
        bpffs = %layout.root.display(),
        links_swapped = swapped,
        maps_kept = ?build.plan.kept.keys().collect::<Vec<_>>(),
        maps_fresh = ?build.plan.fresh,
        "kernel programs of this build in place"
    );
    Ok(())
}

/// Step 4: every `links/<cgroup>/<program>` pin now runs this build's program.
fn swap_links(layout: &PinLayout, build: &Build) -> Result<usize, InterceptorError> {
    let mut swapped = 0;
    let links = layout.links_dir();
    for dir in read_dir(&links)? {
        for pin in read_dir(&dir)? {
            let name = pin.file_name().and_then(|n| n.to_str()).unwrap_or_default().to_owned();
            if !PROGRAMS.contains(&name.as_str()) {
                tracing::info!(link = %pin.display(), "this build has no such hook: detaching");
                fs::remove_file(&pin).map_err(|e| io(&pin, e))?;
                continue;
            }
            match swap_one(&pin, build, &name) {
                Ok(true) => swapped += 1,
                Ok(false) => {}
                Err(e) if e.raw_os_error() == Some(libc::ENOLINK) => {
                    // The cgroup is gone, and with it the attachment.
                    tracing::info!(link = %pin.display(), "link of a removed cgroup: unpinning");
                    fs::remove_file(&pin).map_err(|e| io(&pin, e))?;
                }
                Err(source) => return Err(InterceptorError::LinkUpdate { path: pin, source }),
            }
        }
    }
    Ok(swapped)
}

/// Swaps one link's program; `false` when it already runs this build's.
fn swap_one(pin: &Path, build: &Build, name: &str) -> io::Result<bool> {
    let link = bpf_syscall::obj_get(pin)?;
    let before = bpf_syscall::link_ids(link.as_fd())?;
    let new_id = build.program_id(name).map_err(io::Error::other)?;
    if before.program == new_id {
        return Ok(false);
    }
    let old = bpf_syscall::prog_fd_by_id(before.program)?;
    let new = build.program_fd(name).map_err(io::Error::other)?;
    bpf_syscall::link_update(link.as_fd(), new.as_fd(), old.as_fd())?;
    let after = bpf_syscall::link_ids(link.as_fd())?;
    if after != (bpf_syscall::LinkIds { link: before.link, program: new_id }) {
        return Err(io::Error::other(format!("after the update the link reads {after:?}, not program {new_id}")));
    }
    Ok(true)
}

/// Step 5: the pins name this build's programs and maps; the stamp last.
fn replace_pins(layout: &PinLayout, build: &mut Build) -> Result<(), InterceptorError> {
    let programs: Vec<&str> = programs(build.has_relay()).collect();
    for name in &programs {
        replace_pin(layout, &layout.prog(name), |tmp| build.pin_program(name, tmp))?;
    }
    let fresh: Vec<String> =
        build.plan.fresh.keys().filter(|m| *m != map_names::VERSION && build.has_map(m)).cloned().collect();
    for name in &fresh {
        replace_pin(layout, &layout.map(name), |tmp| build.pin_map(name, tmp))?;
    }
    let maps: Vec<&str> = build.plan.kept.keys().map(String::as_str).chain(fresh.iter().map(String::as_str)).chain([map_names::VERSION]).collect();
    remove_others(&layout.root.join("progs"), &programs)?;
    remove_others(&layout.root.join("maps"), &maps)?;
    build.set_stamp()?;
    if build.plan.fresh.contains_key(map_names::VERSION) {
        replace_pin(layout, &layout.map(map_names::VERSION), |tmp| build.pin_map(map_names::VERSION, tmp))?;
    }
    let staging = layout.staging_dir();
    fs::remove_dir_all(&staging).map_err(|e| io(&staging, e))
}

/// Pins in `staging/` (bpffs allows no dot in a name), then renames over
/// `path`: the pin is never missing.
fn replace_pin(layout: &PinLayout, path: &Path, pin: impl FnOnce(&Path) -> Result<(), InterceptorError>) -> Result<(), InterceptorError> {
    let name = path.file_name().unwrap_or_default();
    let staging = layout.staging_dir();
    fs::create_dir_all(&staging).map_err(|e| io(&staging, e))?;
    let aside = staging.join(name);
    match fs::remove_file(&aside) {
        Err(e) if e.kind() != io::ErrorKind::NotFound => return Err(io(&aside, e)),
        _ => {}
    }
    pin(&aside)?;
    fs::rename(&aside, path).map_err(|e| io(path, e))
}

/// Unpins every entry of `dir` not named in `keep`.
fn remove_others(dir: &Path, keep: &[&str]) -> Result<(), InterceptorError> {
    for path in read_dir(dir)? {
        let name = path.file_name().and_then(|n| n.to_str()).unwrap_or_default();
        if !keep.contains(&name) {
            tracing::info!(pin = %path.display(), "not in this build: unpinning");
            fs::remove_file(&path).map_err(|e| io(&path, e))?;
        }
    }
    Ok(())
}

fn read_dir(dir: &Path) -> Result<Vec<std::path::PathBuf>, InterceptorError> {
    let entries = match fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(io(dir, e)),
    };
    let mut paths = entries.map(|e| e.map(|e| e.path())).collect::<Result<Vec<_>, _>>().map_err(|e| io(dir, e))?;
    paths.sort();
    Ok(paths)
}
