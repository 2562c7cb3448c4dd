//! Two things for the build: the link order of the gateway binary's
//! functions ([`symbol_order`]), and the token vocabularies of
//! `backend::token_ids`, written at build time
//! from tiktoken-rs's own (a build dependency only): per vocabulary one
//! file of `[count: u32 LE][one length byte per id, 0 = no such id][the
//! ids' bytes, in id order]`, deflated. The binary carries these (1.4 MB
//! for both; 2.3 MB as they are) instead of tiktoken's base64 text (5.3 MB),
//! and the first use inflates one (a few milliseconds) in place of building
//! two hash maps of every token.

use std::io::Write as _;

fn write(
    out: &std::path::Path,
    name: &str,
    bpe: &tiktoken_rs::CoreBPE,
    ids: u32,
) -> std::io::Result<()> {
    let mut lens = Vec::with_capacity(ids as usize);
    let mut bytes = Vec::new();
    for id in 0..ids {
        match bpe.decode_bytes(&[id]) {
            Ok(b) => {
                // Every token of both vocabularies is 1 to 128 bytes.
                let n = u8::try_from(b.len())
                    .ok()
                    .filter(|n| *n > 0)
                    .ok_or_else(|| {
                        std::io::Error::other(format!("{name}: token {id} is {} bytes", b.len()))
                    })?;
                lens.push(n);
                bytes.extend_from_slice(&b);
            }
            Err(_) => lens.push(0),
        }
    }
    let path = out.join(format!("{name}.vocab.deflate"));
    let file = std::io::BufWriter::new(std::fs::File::create(path)?);
    let mut f = flate2::write::DeflateEncoder::new(file, flate2::Compression::best());
    f.write_all(&ids.to_le_bytes())?;
    f.write_all(&lens)?;
    f.write_all(&bytes)?;
    f.finish()?.flush()
}

/// The gateway binary's functions in the order `symbol-order.txt` lists
/// them (written by `cargo xtask symbol-order`: those the start and the
/// first requests run), side by side, so the code an idle gateway has
/// touched fills few pages. Only where rustc links with LLD by default
/// (x86_64 Linux, glibc; Rust 1.90 and later), and not when
/// `GATEWAY_SYMBOL_ORDER=0` (for a linker of your own); a name the binary
/// does not have is skipped silently.
///
/// The linker is given a copy in `OUT_DIR`, not the checkout's file: cargo
/// reuses this script's output for any checkout that shares the target
/// directory (a workspace member's hash does not depend on where it is),
/// so a path into one checkout outlives it.
fn symbol_order(out: &std::path::Path) -> std::io::Result<()> {
    println!("cargo::rerun-if-changed=symbol-order.txt");
    println!("cargo::rerun-if-env-changed=GATEWAY_SYMBOL_ORDER");
    let lld = std::env::var("TARGET").is_ok_and(|t| t == "x86_64-unknown-linux-gnu");
    let off = std::env::var("GATEWAY_SYMBOL_ORDER").is_ok_and(|v| v == "0");
    let list =
        std::path::Path::new(&std::env::var("CARGO_MANIFEST_DIR").map_err(std::io::Error::other)?)
            .join("symbol-order.txt");
    if lld && !off && list.exists() {
        let copy = out.join("symbol-order.txt");
        std::fs::copy(&list, &copy)?;
        println!(
            "cargo::rustc-link-arg-bin=gateway=-Wl,--symbol-ordering-file={}",
            copy.display()
        );
        println!("cargo::rustc-link-arg-bin=gateway=-Wl,--no-warn-symbol-ordering");
    }
    Ok(())
}

fn main() -> std::io::Result<()> {
    println!("cargo::rerun-if-changed=build.rs");
    let out = std::path::PathBuf::from(std::env::var("OUT_DIR").map_err(std::io::Error::other)?);
    symbol_order(&out)?;
    // Ids run past the ordinary tokens to the last special one
    // (`<|endofprompt|>`): tiktoken decodes those too.
    write(
        &out,
        "cl100k_base",
        tiktoken_rs::cl100k_base_singleton(),
        100_277,
    )?;
    write(
        &out,
        "o200k_base",
        tiktoken_rs::o200k_base_singleton(),
        200_019,
    )?;
    Ok(())
}
