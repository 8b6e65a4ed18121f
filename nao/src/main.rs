//! The `nao` command line; see `nao --help`.

mod cli;

fn main() {
    // The heap policy and the float mode are the binary's choices, not the library's
    // (`autograd::configure_training_process`): freed tensor buffers kept in the process
    // for the next training step, and subnormals read and written as zero on every
    // computing thread (a controller trained across a search otherwise spends most of its
    // time on them).
    autograd::configure_training_process();
    std::process::exit(cli::main());
}
