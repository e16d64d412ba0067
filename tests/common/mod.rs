#![allow(dead_code)]

pub mod cli;
pub mod emu;
pub mod mount;
pub mod openapi;

/// Runs `cmd`; its stdout, or a panic with everything it printed when it fails.
pub fn run(cmd: &mut std::process::Command) -> String {
    let out = cmd.output().expect("runs");
    assert!(
        out.status.success(),
        "{cmd:?} failed: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}
