//! The box refuses a bad configuration file at start-up with an error naming the field, and
//! exits instead of running half-configured.

use std::process::Command;

use lanterne_scenarios::bin;

fn run_with_config(text: &[u8]) -> (bool, String) {
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("lanterne.toml");
    std::fs::write(&cfg, text).unwrap();
    let out = Command::new(bin("lanterne-box"))
        .args(["run", "--data-dir"])
        .arg(dir.path().join("data"))
        .arg("--config")
        .arg(&cfg)
        .args(["--https", "127.0.0.1:0", "--station-link", "127.0.0.1:0"])
        .output()
        .unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn garbage_config_is_refused_with_the_field_named() {
    let (ok, err) = run_with_config(b"[room]\nname = \"Salle 12\"\n[mosaic]\nwidth = 1280\nheight = 720\nfps = 10\nbitrat_kbps = 2000\n");
    assert!(!ok);
    assert!(err.contains("bitrat_kbps"), "{err}");

    let (ok, err) = run_with_config(b"[room]\nname = \"Salle 12\"\n[thumbnails]\nwidth = 480\nheight = 270\nfps = 99\nbitrate_kbps = 250\n");
    assert!(!ok);
    assert!(err.contains("'thumbnails.fps'"), "{err}");

    let (ok, err) = run_with_config(&[0xff, 0xfe, 0x00, b'[', b'[']);
    assert!(!ok);
    assert!(
        err.contains("lanterne.toml"),
        "the error names the file: {err}"
    );
}
