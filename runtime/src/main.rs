fn main() -> std::process::ExitCode {
    sandbot::cli::main()
}
