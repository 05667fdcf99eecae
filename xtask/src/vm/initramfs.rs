//! The test VM's initramfs: busybox, the modules that reach the host's root
//! (virtio-9p, overlayfs) and `initramfs_init.sh` as `/init`, written as an
//! uncompressed cpio archive in the kernel's `newc` format.

use std::{
    fs,
    io::Write,
    path::Path,
};

use anyhow::Context;

const INIT: &str = include_str!("initramfs_init.sh");
const S_IFDIR: u32 = 0o040000;
const S_IFREG: u32 = 0o100000;
const S_IFCHR: u32 = 0o020000;

/// Writes the archive to `out`: `modules` are loaded in the order given;
/// `guest_script` is what `/init` hands over to on the host's root.
pub fn write(out: &Path, busybox: &Path, modules: &[std::path::PathBuf], guest_script: &Path) -> anyhow::Result<()> {
    let mut cpio = Cpio::default();
    for dir in ["bin", "dev", "proc", "sys", "modules", "lower", "mem", "newroot"] {
        cpio.entry(dir, S_IFDIR | 0o755, &[], (0, 0));
    }
    cpio.entry("dev/console", S_IFCHR | 0o600, &[], (5, 1));
    cpio.entry("init", S_IFREG | 0o755, INIT.as_bytes(), (0, 0));
    let bb = fs::read(busybox).with_context(|| format!("reading {}", busybox.display()))?;
    cpio.entry("bin/busybox", S_IFREG | 0o755, &bb, (0, 0));
    let mut list = String::new();
    for module in modules {
        let name = module.file_name().and_then(|n| n.to_str()).context("module file name")?.to_owned();
        let bytes = fs::read(module).with_context(|| format!("reading {}", module.display()))?;
        cpio.entry(&format!("modules/{name}"), S_IFREG | 0o644, &bytes, (0, 0));
        list.push_str(&name);
        list.push('\n');
    }
    cpio.entry("modules.list", S_IFREG | 0o644, list.as_bytes(), (0, 0));
    let script = guest_script.to_str().context("guest script path is not UTF-8")?;
    cpio.entry("guest_script", S_IFREG | 0o644, script.as_bytes(), (0, 0));
    cpio.entry("TRAILER!!!", 0, &[], (0, 0));
    let mut file = fs::File::create(out).with_context(|| format!("creating {}", out.display()))?;
    file.write_all(&cpio.bytes).and_then(|()| file.flush()).with_context(|| format!("writing {}", out.display()))
}

#[derive(Default)]
struct Cpio {
    bytes: Vec<u8>,
    ino: u32,
}

impl Cpio {
    /// One `newc` entry: a 110-byte ASCII header, the name, the data, each
    /// padded to 4 bytes. `rdev` is a device node's (major, minor).
    fn entry(&mut self, name: &str, mode: u32, data: &[u8], rdev: (u32, u32)) {
        self.ino += 1;
        let nlink = if mode & S_IFDIR != 0 { 2 } else { 1 };
        let fields = [self.ino, mode, 0, 0, nlink, 0, data.len() as u32, 0, 0, rdev.0, rdev.1, name.len() as u32 + 1, 0];
        self.bytes.extend_from_slice(b"070701");
        for f in fields {
            self.bytes.extend_from_slice(format!("{f:08x}").as_bytes());
        }
        self.bytes.extend_from_slice(name.as_bytes());
        self.bytes.push(0);
        self.pad();
        self.bytes.extend_from_slice(data);
        self.pad();
    }

    fn pad(&mut self) {
        while !self.bytes.len().is_multiple_of(4) {
            self.bytes.push(0);
        }
    }
}
