//! The `preprocess` binary (not built yet: it says so and exits non-zero).

fn main() -> std::process::ExitCode {
    eprintln!("error: the `preprocess` stage is not built yet");
    std::process::ExitCode::from(2)
}
