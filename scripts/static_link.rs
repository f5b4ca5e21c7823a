//! The build script of the three components (`build = "../scripts/static_link.rs"` in the operator's,
//! the activator's and the autoscaler's `Cargo.toml`): link arguments for their static images.
//!
//! `scripts/cargo-static.sh` builds the images' binaries as static PIEs (`+crt-static`). A static PIE
//! relocates itself when it starts, and by default its relocation table holds one 24-byte entry per
//! pointer in its read-only data: 480–660 KB per component, read in full at start and then kept
//! resident for the life of the process (docs/images.md, "How an image is assembled"). Packed relative
//! relocations (`DT_RELR`, glibc 2.36 and later, understood by rust-lld and GNU ld 2.38 and later) store
//! the same information in about 8 KB, and the address-space layout stays randomised. Dynamic builds
//! (tests, the benches' drivers, `cargo run`) are left as they are.

fn main() {
    println!("cargo::rerun-if-changed=../scripts/static_link.rs");
    let features = std::env::var("CARGO_CFG_TARGET_FEATURE").unwrap_or_default();
    if features.split(',').any(|f| f == "crt-static") {
        println!("cargo::rustc-link-arg-bins=-Wl,-z,pack-relative-relocs");
    }
}
