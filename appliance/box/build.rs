//! The web UI is embedded with `include_dir!`, which cargo does not track: rebuild the box
//! whenever anything under `web-ui/` changes, including files being added.
fn main() {
    println!("cargo:rerun-if-changed=../../web-ui");
}
