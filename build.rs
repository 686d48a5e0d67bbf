//! Generates the C++ side of the cxx bridge. The header lands in target/cxxbridge/ringmerge/src/
//! (cxx-build's stable location), where the patched RocksDB's CMake finds it; the generated .cc
//! is compiled into this crate's static library, so RocksDB links one archive.
fn main() {
    cxx_build::bridge("src/bridge.rs")
        .std("c++17")
        .flag_if_supported("-fno-rtti")
        .compile("ringmerge-bridge");
    println!("cargo:rerun-if-changed=src/bridge.rs");
}
