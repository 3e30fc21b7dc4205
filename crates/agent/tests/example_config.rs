//! The example configuration must stay loadable and hold exactly the
//! defaults, and a bad value must stop the start with a message naming its
//! key.

use neutrino_agent::config::{AgentConfig, DhcpDriver};
use neutrino_agent_rpc::{DhcpMode, L3Mode};

const EXAMPLE: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../../neutrino-agent.example.toml"
);

fn as_table(cfg: &AgentConfig) -> toml::Table {
    toml::Table::try_from(cfg).expect("the config serializes")
}

#[test]
fn example_config_loads_and_lists_every_key_with_its_default() {
    let text = std::fs::read_to_string(EXAMPLE).expect("example config");
    let parsed: AgentConfig = toml::from_str(&text).expect("the example parses");
    // Key for key, value for value: nothing missing, nothing different (the
    // optional keys, unset by default, are commented out in the example).
    let listed: toml::Table = toml::from_str(&text).unwrap();
    assert_eq!(listed, as_table(&AgentConfig::default()));
    assert_eq!(as_table(&parsed), as_table(&AgentConfig::default()));

    // Through the agent's own loader too (which fills in the hostname).
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("agent.toml");
    std::fs::write(&path, text.replace("host = \"\"", "host = \"h1\"")).unwrap();
    let cfg = AgentConfig::load(Some(&path)).expect("the example loads");
    assert_eq!(cfg.agent.host, "h1");
    assert_eq!(cfg.dhcp.driver, DhcpDriver::Native);
    assert_eq!((cfg.dhcp.mode, cfg.l3.mode), (DhcpMode::All, L3Mode::Off));
}

#[test]
fn bad_enum_values_name_their_key() {
    let dir = tempfile::tempdir().unwrap();
    for (section, key, bad) in [
        ("dhcp", "driver", "dhcpd"),
        ("dhcp", "mode", "some"),
        ("l3", "mode", "dvr"),
    ] {
        let path = dir.path().join(format!("{section}-{key}.toml"));
        std::fs::write(
            &path,
            format!("[agent]\nhost = \"h1\"\n\n[{section}]\n{key} = \"{bad}\"\n"),
        )
        .unwrap();
        let err = format!("{:#}", AgentConfig::load(Some(&path)).unwrap_err());
        assert!(
            err.contains(&format!("{key} = \"{bad}\"")) && err.contains("unknown variant"),
            "{section}.{key}: {err}"
        );
        // The line named is the one in that section.
        assert!(err.contains("line 5"), "{section}.{key}: {err}");
    }
}
