//! `cargo xtask bench`: criterion benches (and, with the gateway, the load
//! benchmark).

use anyhow::Result;

pub(crate) fn run(args: &[String]) -> Result<()> {
    crate::run(
        crate::cargo()
            .args(["bench", "--bench", "sm_stream", "--"])
            .args(args),
    )
}
