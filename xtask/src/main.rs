//! `cargo xtask <command>`: everything needed to build, try and test the
//! gateway on a fresh Debian machine.

mod bench;
mod build;
mod cgroup;
mod fuzz;
mod image;
mod pgo;
mod prereqs;
mod run;
mod shell;
mod test;
mod vm;

#[cfg(test)]
mod tests;

use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(name = "xtask")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Measure the gateway against no proxy, iptables redirection and HAProxy.
    Bench(bench::Options),
    /// Install what is missing, then build the kernel programs and `gateway`.
    Build(build::Options),
    /// Build the cargo-fuzz targets in fuzz/ and run each (30 s by default).
    Fuzz(fuzz::Options),
    /// Build the container image from Containerfile, with podman or docker.
    Image(image::Options),
    /// Build, then run `gateway` on examples/, intercepting a demo cgroup.
    Run(run::Options),
    /// Open a shell inside the demo cgroup that `cargo xtask run` intercepts.
    Shell,
    /// Install what is missing, then run the unit and privileged integration tests.
    Test(test::Options),
}

fn main() -> anyhow::Result<()> {
    match Cli::parse().command {
        Command::Bench(o) => bench::bench(o),
        Command::Build(o) => build::build(&o),
        Command::Fuzz(o) => fuzz::fuzz(&o),
        Command::Image(o) => image::image(&o),
        Command::Run(o) => run::run(&o),
        Command::Shell => shell::shell(),
        Command::Test(o) => test::test(&o),
    }
}
