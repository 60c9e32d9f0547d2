//! Command-line interface: argument parsing, error reporting and exit codes.

use std::process::ExitCode;

use clap::{Parser, Subcommand};

use crate::commands::stage::StageCommand;
use crate::device::{DeviceChoice, DtypeChoice};

/// ConsistentID: identity-preserving portraits from one reference face photo.
#[derive(Debug, Parser)]
#[command(name = "consistentid", version)]
pub struct Cli {
    /// Compute backend.
    #[arg(long, global = true, value_enum, default_value_t = DeviceChoice::Auto)]
    pub device: DeviceChoice,

    /// Float type of the diffusion networks (text encoder, UNet, VAE, CLIP ViT-H): `auto` is
    /// f16 on CUDA, as the official pipeline, and f32 elsewhere. Face detection, recognition,
    /// parsing and the ConsistentID projections always run in f32.
    #[arg(long, global = true, value_enum, default_value_t = DtypeChoice::Auto)]
    pub dtype: DtypeChoice,

    #[command(subcommand)]
    pub command: Command,
}

/// The commands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run one pipeline stage and save its tensors as safetensors (f32, fixed names), to compare
    /// against diffusers/transformers.
    #[command(subcommand)]
    Stage(StageCommand),
    /// Generate images from a text prompt with an SD1.x model folder; writes PNGs with their
    /// parameters (prompt, seed, sampler, ...) in the PNG `parameters` text chunk.
    Generate(Box<crate::commands::generate::GenerateArgs>),
    /// Run the host: the web app and a Replicate-compatible API on one origin, with progress
    /// streams, persistence and share links (`consistentid serve`, then open the printed URL).
    Serve(crate::commands::serve::ServeArgs),
    /// Bring a PostgreSQL database's schema up to date (what `serve --database-url` does at
    /// start unless `--no-migrate`), under a lock so that concurrent runs migrate once.
    Migrate(crate::commands::migrate::MigrateArgs),
    /// Download the official weights from the Hugging Face Hub into the HF cache and assemble the
    /// model folder (`--dry-run` lists the files and where they go; `--offline` uses the cache).
    Fetch(crate::commands::fetch::FetchArgs),
    /// Time a ConsistentID folder on this machine: load, each phase of a cold and a warm
    /// portrait, each step, the big networks alone, and peak memory, as JSON on stdout
    /// (`scripts/bench.sh` puts it next to PyTorch's figures for the same shapes).
    Bench(crate::commands::bench::BenchArgs),
    /// Prepare training data: FGID-style records (resized photos, label maps, identities,
    /// captions and the official training JSON) from any folder of portraits.
    #[command(subcommand)]
    Dataset(crate::commands::dataset::DatasetCommand),
    /// Fine-tune the ID-preservation network (ProjPlus, FacialEncoder, attention processors)
    /// with the facial attention localization loss on a dataset in the official training JSON
    /// layout; writes metrics, checkpoints (`--resume`) and `ConsistentID-v1.bin`.
    Train(crate::commands::train::TrainArgs),
    /// Evaluate portraits against their reference photos (FaceSim with ArcFace, FGIS, CLIP-I):
    /// generate a benchmark, score any folder of images, compare runs, with an HTML report.
    #[command(subcommand)]
    Eval(crate::commands::eval::EvalCommand),
}

/// Parses the process arguments, runs, and turns any error or panic into one line on stderr
/// and a non-zero exit code.
pub fn main() -> ExitCode {
    let cli = Cli::parse();
    run_guarded(cli)
}

/// Runs a parsed command line; errors become `error: …` on stderr and exit code 1, internal
/// panics (a backend failure) exit code 2 with the panic message on one line.
pub fn run_guarded(cli: Cli) -> ExitCode {
    std::panic::set_hook(Box::new(|_| {}));
    match std::panic::catch_unwind(|| run(cli)) {
        Ok(Ok(())) => ExitCode::SUCCESS,
        Ok(Err(e)) => {
            eprintln!("error: {}", one_line(&format!("{e:#}")));
            ExitCode::from(1)
        }
        Err(panic) => {
            let msg = panic
                .downcast_ref::<String>()
                .map(String::as_str)
                .or_else(|| panic.downcast_ref::<&str>().copied())
                .unwrap_or("unknown panic");
            eprintln!("error: internal failure: {}", one_line(msg));
            ExitCode::from(2)
        }
    }
}

/// Runs a parsed command line.
pub fn run(cli: Cli) -> anyhow::Result<()> {
    match cli.command {
        Command::Stage(stage) => crate::commands::stage::run(stage, cli.device, cli.dtype),
        Command::Generate(mut args) => {
            args.model = crate::hf_cache::resolve_model(&args.model)?;
            crate::commands::generate::run(&args, cli.device, cli.dtype)
        }
        Command::Fetch(args) => crate::commands::fetch::run(&args),
        Command::Migrate(args) => crate::commands::migrate::run(&args),
        Command::Bench(args) => crate::commands::bench::run(&args, cli.device, cli.dtype),
        Command::Dataset(command) => crate::commands::dataset::run(command, cli.device),
        Command::Train(args) => crate::commands::train::run(&args, cli.device),
        Command::Eval(command) => crate::commands::eval::run(command, cli.device, cli.dtype),
        Command::Serve(mut args) => {
            args.model = crate::hf_cache::resolve_model(&args.model)?;
            crate::commands::serve::run(args, cli.device, cli.dtype)
        }
    }
}

fn one_line(text: &str) -> String {
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}
