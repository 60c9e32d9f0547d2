//! The `consistentid` command.

fn main() -> std::process::ExitCode {
    consistentid_native::cli::main()
}
