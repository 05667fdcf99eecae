//! The kernel object embedded in this binary: its build stamp, and loading
//! it with the pinned maps it can keep (`map_reuse.rs`). `install.rs` then
//! puts what was loaded in place.

use std::path::PathBuf;

use aya::{
    Ebpf, EbpfLoader,
    maps::{Array, HashMap, Map, MapData, MapError, SockHash},
    programs::{CgroupSkb, CgroupSockAddr, ProgramError, ProgramFd, SkSkb, SockOps},
};
use gateway_common::{ProxyConfig, map_names};

use super::{
    InterceptorError, PinLayout,
    map_reuse::ReusePlan,
    pins::{PROGRAMS, RELAY_PROGRAM},
};

/// The kernel programs, built by `build.rs` from the `gateway-ebpf` crate.
static OBJECT: &[u8] = aya::include_bytes_aligned!(concat!(env!("OUT_DIR"), "/gateway-ebpf.o"));

/// This build's stamp: a hash of the kernel object it embeds and of the
/// kernel log level fixed at load (another level is another program).
pub fn build_stamp(log_level: u8) -> u64 {
    // FNV-1a: stable across builds and platforms, unlike std's hasher.
    OBJECT.iter().chain([&log_level]).fold(0xcbf2_9ce4_8422_2325u64, |h, b| (h ^ u64::from(*b)).wrapping_mul(0x0100_0000_01b3))
}

/// The stamp of the programs pinned under `layout`, if readable.
pub fn pinned_stamp(layout: &PinLayout) -> Option<u64> {
    let map = MapData::from_pin(layout.map(map_names::VERSION)).ok()?;
    let array: Array<MapData, u64> = Array::try_from(Map::Array(map)).ok()?;
    array.get(&0, 0).ok()
}

/// This build's programs, loaded into the kernel but neither attached nor
/// pinned, with their maps: the pinned ones kept, fresh ones for the rest.
pub struct Build {
    ebpf: Ebpf,
    pub plan: ReusePlan,
    relay: bool,
    log_level: u8,
}

/// The programs a build loads: the cgroup hooks, and the relay's verdict
/// program when the kernel relay is on.
pub fn programs(relay: bool) -> impl Iterator<Item = &'static str> {
    PROGRAMS.iter().copied().chain(relay.then_some(RELAY_PROGRAM))
}

impl Build {
    /// Loads the programs; without `relay` (the kernel lacks the relay's
    /// features) the relay's verdict program is left out, and so are its
    /// maps where the kernel has no such map type.
    ///
    /// `log_level` fixes aya-log's `AYA_LOG_LEVEL` (0: off, see
    /// `gateway-ebpf/src/log.rs`).
    pub fn load(layout: &PinLayout, relay: bool, log_level: u8) -> Result<Self, InterceptorError> {
        let plan = ReusePlan::new(layout, OBJECT)?;
        let paths: Vec<(&str, PathBuf)> = plan.kept.keys().map(|n| (n.as_str(), layout.map(n))).collect();
        let mut loader = EbpfLoader::new();
        for (name, path) in &paths {
            loader.map_pin_path(name, path.as_path());
        }
        if !relay {
            loader.allow_unsupported_maps();
        }
        loader.override_global(aya_log::LEVEL, &log_level, true);
        let mut ebpf = loader.load(OBJECT)?;
        plan.verify(&ebpf)?;
        for name in programs(relay) {
            load_program(&mut ebpf, name)?;
        }
        Ok(Self { ebpf, plan, relay, log_level })
    }

    /// Whether this build carries the kernel relay.
    pub fn has_relay(&self) -> bool {
        self.relay
    }

    /// Whether the object's map `name` was created (a map type the kernel
    /// lacks is not, when the relay is left out).
    pub fn has_map(&self, name: &str) -> bool {
        self.ebpf.map(name).is_some()
    }

    pub fn program_fd(&self, name: &str) -> Result<&ProgramFd, InterceptorError> {
        let prog_err = |source| InterceptorError::Program { name: name.to_string(), source };
        self.ebpf.program(name).ok_or(prog_err(ProgramError::UnexpectedProgramType))?.fd().map_err(prog_err)
    }

    pub fn program_id(&self, name: &str) -> Result<u32, InterceptorError> {
        let prog_err = |source| InterceptorError::Program { name: name.to_string(), source };
        let program = self.ebpf.program(name).ok_or(prog_err(ProgramError::UnexpectedProgramType))?;
        Ok(program.info().map_err(prog_err)?.id())
    }

    /// Pins program `name` at `path`.
    pub fn pin_program(&mut self, name: &str, path: &std::path::Path) -> Result<(), InterceptorError> {
        let prog_err = |source| InterceptorError::Program { name: name.to_string(), source };
        let program = self.ebpf.program_mut(name).ok_or(prog_err(ProgramError::UnexpectedProgramType))?;
        program.pin(path).map_err(|source| InterceptorError::Pin { path: path.to_path_buf(), source })
    }

    /// Pins map `name` at `path`.
    pub fn pin_map(&self, name: &str, path: &std::path::Path) -> Result<(), InterceptorError> {
        let map = self.ebpf.map(name).ok_or_else(|| missing_map(name))?;
        map.pin(path).map_err(|source| InterceptorError::Pin { path: path.to_path_buf(), source })
    }

    pub fn set_proxy_config(&mut self, cfg: &ProxyConfig) -> Result<(), InterceptorError> {
        let name = map_names::PROXY_CONFIG;
        let mut array: Array<_, ProxyConfig> = self.typed(name)?;
        array.set(0, cfg, 0).map_err(|source| InterceptorError::Map { name, source })
    }

    pub fn set_stamp(&mut self) -> Result<(), InterceptorError> {
        let name = map_names::VERSION;
        let stamp = build_stamp(self.log_level);
        let mut array: Array<_, u64> = self.typed(name)?;
        array.set(0, stamp, 0).map_err(|source| InterceptorError::Map { name, source })
    }

    /// Fills a fresh exemption map from the pinned one when both hold the
    /// same key and value types, so a capacity change exempts no pod less.
    pub fn carry_exemptions(&mut self, layout: &PinLayout) -> Result<usize, InterceptorError> {
        let name = map_names::EXEMPT_CGROUPS;
        let Ok(old) = MapData::from_pin(layout.map(name)) else { return Ok(0) };
        let Ok(old) = HashMap::<_, u64, u32>::try_from(Map::HashMap(old)) else { return Ok(0) };
        let mut new: HashMap<_, u64, u32> = self.typed(name)?;
        let mut carried = 0;
        for entry in old.iter() {
            let (id, v) = entry.map_err(|source| InterceptorError::Map { name, source })?;
            new.insert(id, v, 0).map_err(|source| InterceptorError::Map { name, source })?;
            carried += 1;
        }
        Ok(carried)
    }

    /// Attaches the kernel relay's verdict program to its socket map. A map
    /// holds one verdict program: this replaces the one there, in one step;
    /// sockets already in the map keep the program they joined with. The map
    /// holds the attachment as long as it is pinned.
    pub fn attach_relay(&mut self) -> Result<(), InterceptorError> {
        let name = map_names::RELAY_SOCKS;
        let map = self.ebpf.map(name).ok_or_else(|| missing_map(name))?;
        let socks: SockHash<&MapData, u64> = SockHash::try_from(map).map_err(|source| InterceptorError::Map { name, source })?;
        let map_fd = socks.fd().try_clone().map_err(|e| InterceptorError::Object(format!("{name}: {e}")))?;
        let prog_err = |source| InterceptorError::Program { name: RELAY_PROGRAM.to_string(), source };
        let program: &mut SkSkb = self
            .ebpf
            .program_mut(RELAY_PROGRAM)
            .ok_or(prog_err(ProgramError::UnexpectedProgramType))?
            .try_into()
            .map_err(prog_err)?;
        let link = program.attach(&map_fd).map_err(prog_err)?;
        // Dropping the link would detach the program; the pinned map keeps it.
        std::mem::forget(program.take_link(link).map_err(prog_err)?);
        Ok(())
    }

    fn typed<'a, T: TryFrom<&'a mut Map, Error = MapError>>(&'a mut self, name: &'static str) -> Result<T, InterceptorError> {
        let map = self.ebpf.map_mut(name).ok_or_else(|| missing_map(name))?;
        T::try_from(map).map_err(|source| InterceptorError::Map { name, source })
    }
}

fn missing_map(name: &str) -> InterceptorError {
    InterceptorError::Object(format!("the kernel object has no map {name}"))
}

fn load_program(ebpf: &mut Ebpf, name: &str) -> Result<(), InterceptorError> {
    let prog_err = |source| InterceptorError::Program { name: name.to_string(), source };
    let program = ebpf.program_mut(name).ok_or(prog_err(ProgramError::UnexpectedProgramType))?;
    if let Ok(p) = <&mut CgroupSockAddr>::try_from(&mut *program) {
        p.load().map_err(prog_err)
    } else if let Ok(p) = <&mut SkSkb>::try_from(&mut *program) {
        p.load().map_err(prog_err)
    } else if let Ok(p) = <&mut CgroupSkb>::try_from(&mut *program) {
        p.load().map_err(prog_err)
    } else {
        let p: &mut SockOps = program.try_into().map_err(prog_err)?;
        p.load().map_err(prog_err)
    }
}
