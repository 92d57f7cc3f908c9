//! The `token-validator` binary: parse the command line, hand over to the library.

fn main() -> std::process::ExitCode {
    token_validator::cli::main()
}
