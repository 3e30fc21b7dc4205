//! The example configuration must stay loadable, and a bad key must stop the
//! start with a message naming it.

use std::path::Path;
use std::process::Command;

/// Starts `neutrino server --config path`, which must fail; returns its stderr.
fn failed_start(path: &Path) -> String {
    let out = Command::new(env!("CARGO_BIN_EXE_neutrino"))
        .args(["server", "--config"])
        .arg(path)
        .output()
        .unwrap();
    assert!(!out.status.success(), "the start should fail");
    String::from_utf8_lossy(&out.stderr).into_owned()
}

#[test]
fn example_config_is_valid_and_typos_are_named() {
    let root = concat!(env!("CARGO_MANIFEST_DIR"), "/../../neutrino.example.toml");
    let text = std::fs::read_to_string(root).expect("example config");
    let dir = tempfile::tempdir().unwrap();
    // Check the example by starting the server on a port that is already taken:
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
    let err = failed_start(&path);
    assert!(
        err.contains("cannot listen"),
        "expected only the bind to fail, got: {err}"
    );

    let bad = dir.path().join("bad.toml");
    for (text, key) in [
        ("[server]\nlistne = \"127.0.0.1:1\"\n", "listne"),
        (
            "[network]\nvxlan_vni_ranges = [\"5:1\"]\n",
            "network.vxlan_vni_ranges",
        ),
        ("[identity]\nmode = \"ldap\"\n", "identity.mode"),
        ("[quotas]\nrouters = 3\n", "quotas.routers"),
    ] {
        std::fs::write(&bad, text).unwrap();
        let err = failed_start(&bad);
        assert!(err.contains(key), "the error should name {key}: {err}");
    }
}
