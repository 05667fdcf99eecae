//! `gateway`: one binary for the node interceptor, the egress gateway and the
//! ingress gateway.

use gateway_userspace::{cli, interceptor, run, suggest, validate};

use clap::Parser;

use cli::{Cli, Command};

fn main() -> std::process::ExitCode {
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()),
        )
        .init();
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Run(args) => tokio::runtime::Builder::new_multi_thread()
            .enable_all()
            .build()
            .map_err(anyhow::Error::from)
            .and_then(|rt| rt.block_on(run::run(*args))),
        Command::Ca(args) => tokio::runtime::Builder::new_multi_thread()
            .enable_all()
            .build()
            .map_err(anyhow::Error::from)
            .and_then(|rt| rt.block_on(gateway_userspace::workload_ca::run(*args))),
        Command::Validate(args) => return validate::validate(&args),
        Command::Suggest(args) => suggest::suggest(&args),
        Command::Certs(args) => gateway_userspace::tls::certs_command(&args).map_err(anyhow::Error::from),
        Command::Detach(args) => interceptor::Interceptor::detach(&args.bpffs)
            .map(|()| tracing::info!(bpffs = %args.bpffs.display(), "detached"))
            .map_err(anyhow::Error::from),
    };
    match result {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}
