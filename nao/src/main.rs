fn main() {
    eprintln!("nao: the search is not built yet");
    std::process::exit(2);
}
