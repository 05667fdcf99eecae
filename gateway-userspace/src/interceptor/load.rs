//! First start: load the kernel object embedded in this binary and pin its
//! maps and programs, so they outlive the process.

use aya::{
    Ebpf, EbpfLoader,
    programs::{CgroupSkb, CgroupSockAddr, SockOps},
};

use super::{InterceptorError, PinLayout, pins::PROGRAMS};

/// The kernel programs, built by `build.rs` from the `gateway-ebpf` crate.
static OBJECT: &[u8] = aya::include_bytes_aligned!(concat!(env!("OUT_DIR"), "/gateway-ebpf.o"));

pub fn load_and_pin(layout: &PinLayout) -> Result<(), InterceptorError> {
    let mut ebpf = EbpfLoader::new().load(OBJECT)?;
    for (name, map) in ebpf.maps() {
        let path = layout.map(name);
        map.pin(&path).map_err(|source| InterceptorError::Pin { path, source })?;
    }
    for name in PROGRAMS {
        load_program(&mut ebpf, name, layout)?;
    }
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
    } else if let Ok(p) = <&mut CgroupSkb>::try_from(&mut *program) {
        p.load().map_err(prog_err)?;
        p.pin(&path).map_err(pin_err)
    } else {
        let p: &mut SockOps = program.try_into().map_err(prog_err)?;
        p.load().map_err(prog_err)?;
        p.pin(&path).map_err(pin_err)
    }
}
