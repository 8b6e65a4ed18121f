//! The `nao` command line; see `nao --help`.

mod cli;

fn main() {
    // The heap policy is the binary's choice, not the library's: keep freed tensor buffers
    // in the process for the next training step (see `autograd::retain_freed_memory`).
    autograd::retain_freed_memory();
    std::process::exit(cli::main());
}
