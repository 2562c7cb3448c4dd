//! `cargo xtask demo`: filled in with the gateway.

use anyhow::{Result, bail};

pub(crate) fn run(_args: &[String]) -> Result<()> {
    bail!("the demo needs the gateway binary, which is not built yet")
}
