//! First start: load the kernel object embedded in this binary and pin its
//! maps and programs, so they outlive the process.

use aya::{
    Ebpf, EbpfLoader,
    maps::{Array, Map, MapData, SockHash},
    programs::{CgroupSkb, CgroupSockAddr, SkSkb, SockOps},
};
use gateway_common::map_names;

use super::{InterceptorError, PinLayout, pins::{PROGRAMS, RELAY_PROGRAM}};

/// The kernel programs, built by `build.rs` from the `gateway-ebpf` crate.
static OBJECT: &[u8] = aya::include_bytes_aligned!(concat!(env!("OUT_DIR"), "/gateway-ebpf.o"));

/// This build's stamp: a hash of the kernel object it embeds.
pub fn build_stamp() -> u64 {
    // FNV-1a: stable across builds and platforms, unlike std's hasher.
    OBJECT.iter().fold(0xcbf2_9ce4_8422_2325u64, |h, b| (h ^ u64::from(*b)).wrapping_mul(0x0100_0000_01b3))
}

/// The stamp of the programs pinned under `layout`, if readable.
pub fn pinned_stamp(layout: &PinLayout) -> Option<u64> {
    let map = MapData::from_pin(layout.map(map_names::VERSION)).ok()?;
    let array: Array<MapData, u64> = Array::try_from(Map::Array(map)).ok()?;
    array.get(&0, 0).ok()
}

pub fn load_and_pin(layout: &PinLayout) -> Result<(), InterceptorError> {
    let mut ebpf = EbpfLoader::new().load(OBJECT)?;
    let name = map_names::VERSION;
    let mut version: Array<_, u64> = ebpf
        .map_mut(name)
        .ok_or(InterceptorError::Map { name, source: aya::maps::MapError::InvalidName { name: name.into() } })?
        .try_into()
        .map_err(|source| InterceptorError::Map { name, source })?;
    version.set(0, build_stamp(), 0).map_err(|source| InterceptorError::Map { name, source })?;
    for (name, map) in ebpf.maps() {
        let path = layout.map(name);
        map.pin(&path).map_err(|source| InterceptorError::Pin { path, source })?;
    }
    for name in PROGRAMS.iter().chain([&RELAY_PROGRAM]) {
        load_program(&mut ebpf, name, layout)?;
    }
    attach_relay(&mut ebpf)
}

/// Attaches the kernel relay's verdict program to its socket map. The map
/// holds the attachment, so it lasts as long as the pinned map does.
fn attach_relay(ebpf: &mut Ebpf) -> Result<(), InterceptorError> {
    let name = map_names::RELAY_SOCKS;
    let map = ebpf.take_map(name).ok_or(InterceptorError::Map { name, source: aya::maps::MapError::InvalidName { name: name.into() } })?;
    let socks: SockHash<_, u64> = SockHash::try_from(map).map_err(|source| InterceptorError::Map { name, source })?;
    let prog_err = |source| InterceptorError::Program { name: RELAY_PROGRAM.to_string(), source };
    let program: &mut SkSkb = ebpf
        .program_mut(RELAY_PROGRAM)
        .ok_or(prog_err(aya::programs::ProgramError::UnexpectedProgramType))?
        .try_into()
        .map_err(prog_err)?;
    let link = program.attach(socks.fd()).map_err(prog_err)?;
    // Dropping the link would detach the program; the pinned map keeps it.
    std::mem::forget(program.take_link(link).map_err(prog_err)?);
    Ok(())
}

fn load_program(ebpf: &mut Ebpf, name: &str, layout: &PinLayout) -> Result<(), InterceptorError> {
    let prog_err = |source| InterceptorError::Program { name: name.to_string(), source };
    let program = ebpf.program_mut(name).ok_or_else(|| {
        prog_err(aya::programs::ProgramError::UnexpectedProgramType)
    })?;
    let path = layout.prog(name);
    let pin_err = |source| InterceptorError::Pin { path: path.clone(), source };
    if let Ok(p) = <&mut CgroupSockAddr>::try_from(&mut *program) {
        p.load().map_err(prog_err)?;
        p.pin(&path).map_err(pin_err)
    } else if let Ok(p) = <&mut SkSkb>::try_from(&mut *program) {
        p.load().map_err(prog_err)?;
        p.pin(&path).map_err(pin_err)
    } else if let Ok(p) = <&mut CgroupSkb>::try_from(&mut *program) {
        p.load().map_err(prog_err)?;
        p.pin(&path).map_err(pin_err)
    } else {
        let p: &mut SockOps = program.try_into().map_err(prog_err)?;
        p.load().map_err(prog_err)?;
        p.pin(&path).map_err(pin_err)
    }
}
