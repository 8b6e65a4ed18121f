//! The `nao` command line; see `nao --help`.

mod cli;

fn main() {
    std::process::exit(cli::main());
}
