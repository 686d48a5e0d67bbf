//! Build steps:
//! 1. the C++ side of the cxx bridge. The header lands in target/cxxbridge/ringmerge/src/
//!    (cxx-build's stable location), where the patched RocksDB's CMake finds it; the generated .cc
//!    is compiled into this crate's static library, so RocksDB links one archive;
//! 2. the BPF merge program (bpf/merge.bpf.c), compiled with clang-19 (`RINGMERGE_CLANG`
//!    overrides) into a libbpf-cargo skeleton that embeds the object, so nothing needs clang at
//!    run time.
use libbpf_cargo::SkeletonBuilder;
use std::path::PathBuf;

fn main() {
    cxx_build::bridges(["src/contract.rs", "src/api.rs"])
        // The bridge's C++ types (ringmerge_read_throttle.h, ringmerge_read_accounting.h); the
        // patched RocksDB finds them through the same cpp/ folder.
        .include("cpp")
        .std("c++17")
        .flag_if_supported("-fno-rtti")
        .compile("ringmerge-bridge");
    println!("cargo:rerun-if-changed=src/contract.rs");
    println!("cargo:rerun-if-changed=src/api.rs");
    println!("cargo:rerun-if-changed=cpp/ringmerge_read_throttle.h");
    println!("cargo:rerun-if-changed=cpp/ringmerge_read_accounting.h");

    let out = PathBuf::from(std::env::var_os("OUT_DIR").expect("OUT_DIR is set by cargo"));
    let clang = std::env::var("RINGMERGE_CLANG").unwrap_or_else(|_| "clang-19".to_owned());
    // -mcpu=v4: may_goto (can_loop), 32-bit jumps and sign-extending loads the program relies on.
    if let Err(e) = SkeletonBuilder::new()
        .source("bpf/merge.bpf.c")
        .clang(&clang)
        .clang_args(["-mcpu=v4", "-Ibpf", "-Wall", "-Werror"])
        .build_and_generate(out.join("merge.skel.rs"))
    {
        panic!(
            "building bpf/merge.bpf.c with {clang} failed (scripts/install-deps.sh installs \
             clang-19): {e:#}"
        );
    }
    println!("cargo:rerun-if-changed=bpf/merge.bpf.c");
    println!("cargo:rerun-if-changed=bpf/merge_abi.h");
    println!("cargo:rerun-if-env-changed=RINGMERGE_CLANG");
}
