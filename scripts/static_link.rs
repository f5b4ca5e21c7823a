//! The build script of the three components (`build = "../scripts/static_link.rs"` in the operator's,
//! the activator's and the autoscaler's `Cargo.toml`): link arguments for their static images.
//!
//! `scripts/cargo-static.sh` builds the images' binaries as static PIEs (`+crt-static`). Two link
//! arguments make their idle processes keep fewer pages (#19's P9, docs/images.md, "How an image is
//! assembled"):
//!
//! - **Packed relative relocations.** A static PIE relocates itself when it starts, and by default its
//!   relocation table holds one 24-byte entry per pointer in its read-only data: 480–660 KB per
//!   component, read in full at start and then kept resident for the life of the process. Packed
//!   relative relocations (`DT_RELR`, glibc 2.36 and later, understood by rust-lld and GNU ld 2.38 and
//!   later) store the same information in about 8 KB, and the address-space layout stays randomised.
//! - **The link order** (`images/link-order/<component>.txt`, made by `scripts/link-order.sh`): the
//!   functions the component ran on the real node, laid out together at the start of its code. The
//!   kernel maps the 64 KiB around each page of code a process touches, so functions spread over the
//!   whole binary keep most of it resident. Only rust-lld (the toolchain's default linker on x86-64
//!   Linux) reads the file; a name no longer in the binary is skipped.
//!
//! Dynamic builds (tests, the benches' drivers, `cargo run`) are left as they are.

fn main() {
    println!("cargo::rerun-if-changed=../scripts/static_link.rs");
    let features = std::env::var("CARGO_CFG_TARGET_FEATURE").unwrap_or_default();
    if !features.split(',').any(|f| f == "crt-static") {
        return;
    }
    println!("cargo::rustc-link-arg-bins=-Wl,-z,pack-relative-relocs");
    let arch = std::env::var("CARGO_CFG_TARGET_ARCH").unwrap_or_default();
    let package = std::env::var("CARGO_PKG_NAME").unwrap_or_default();
    let manifest_dir = std::env::var("CARGO_MANIFEST_DIR").unwrap_or_default();
    let component = package.trim_start_matches("zeroscale-");
    let order = std::path::Path::new(&manifest_dir)
        .join("../images/link-order")
        .join(format!("{component}.txt"));
    println!("cargo::rerun-if-changed={}", order.display());
    if arch == "x86_64" && order.is_file() {
        println!(
            "cargo::rustc-link-arg-bins=-Wl,--symbol-ordering-file={}",
            order.display()
        );
        println!("cargo::rustc-link-arg-bins=-Wl,--no-warn-symbol-ordering");
    }
}
