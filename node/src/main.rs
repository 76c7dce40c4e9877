//! The stock `tern` binary: the node with the ready actors (`counter`, `room`, `sqlite`).

fn main() -> std::process::ExitCode {
    tern_node::cli::main(tern_node::ready::registry())
}
