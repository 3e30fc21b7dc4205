//! The example configuration must stay loadable, and a bad key must stop the
//! start with a message naming it.

use std::process::Command;

#[test]
fn example_config_is_valid_and_typos_are_named() {
    let root = concat!(env!("CARGO_MANIFEST_DIR"), "/../../neutrino.example.toml");
    let text = std::fs::read_to_string(root).expect("example config");
    let dir = tempfile::tempdir().unwrap();
    // Parse the example by starting the server on a port that is already taken:
    // a config error is reported before the bind, a valid config gets to the bind.
    let busy = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = busy.local_addr().unwrap();
    let good = text
        .replace(
            "listen = \"127.0.0.1:9696\"",
            &format!("listen = \"{addr}\""),
        )
        .replace(
            "data_dir = \"neutrino-data\"",
            &format!("data_dir = \"{}\"", dir.path().join("d").display()),
        );
    let path = dir.path().join("good.toml");
    std::fs::write(&path, good).unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_neutrino"))
        .args(["server", "--config"])
        .arg(&path)
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(
        err.contains("cannot listen"),
        "expected only the bind to fail, got: {err}"
    );

    let bad = dir.path().join("bad.toml");
    std::fs::write(&bad, "[server]\nlistne = \"127.0.0.1:1\"\n").unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_neutrino"))
        .args(["server", "--config"])
        .arg(&bad)
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(
        err.contains("listne"),
        "the error should name the bad key: {err}"
    );

    std::fs::write(&bad, "[network]\nvxlan_vni_ranges = [\"5:1\"]\n").unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_neutrino"))
        .args(["server", "--config"])
        .arg(&bad)
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("network.vxlan_vni_ranges"),
        "the error should name the key: {err}"
    );
}
