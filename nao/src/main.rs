//! The `nao` command line; see `nao --help`.

mod cli;

fn main() {
    // The heap policy is the binary's choice, not the library's: keep freed tensor buffers
    // in the process for the next training step (see `autograd::retain_freed_memory`).
    autograd::retain_freed_memory();
    // The float mode too: subnormals read and written as zero on every computing thread
    // (see `autograd::flush_denormals`); a controller trained across a search otherwise
    // spends most of its time on them.
    autograd::flush_denormals();
    std::process::exit(cli::main());
}
