//! The `builtin` backend: the OpenStack tree (`/openstack/<version>/...`) and
//! the EC2 tree (`/<version>/meta-data/...`) as Nova serves them, answered
//! from an [`Instance`]. Versions and the files each one has are declared
//! once below; listings and lookups are both derived from those tables.

use base64::Engine as _;
use serde_json::{Map, Value, json};

use crate::facts::Instance;
use crate::{Answer, Method, Request, network_data};

/// Nova's OpenStack metadata versions, oldest first (`latest` is the last).
pub const OPENSTACK_VERSIONS: &[&str] = &[
    "2012-08-10",
    "2013-04-04",
    "2013-10-17",
    "2015-10-15",
    "2016-06-30",
    "2016-10-06",
    "2017-02-22",
    "2018-08-27",
    "2020-10-14",
    "2025-04-04",
];

/// Nova's EC2 metadata versions, oldest first (`latest` is the last).
pub const EC2_VERSIONS: &[&str] = &[
    "1.0",
    "2007-01-19",
    "2007-03-01",
    "2007-08-29",
    "2007-10-10",
    "2007-12-15",
    "2008-02-01",
    "2008-09-01",
    "2009-04-04",
];

/// The files of `/openstack/<version>/`, in Nova's listing order, with the
/// version that brought each.
const OPENSTACK_FILES: &[(&str, &str)] = &[
    ("meta_data.json", "2012-08-10"),
    ("user_data", "2012-08-10"),
    ("password", "2013-04-04"),
    ("vendor_data.json", "2013-10-17"),
    ("network_data.json", "2015-10-15"),
    ("vendor_data2.json", "2016-10-06"),
];

/// The keys of `/<version>/meta-data/`, with the version that brought each.
const EC2_KEYS: &[(&str, &str)] = &[
    ("ami-id", "1.0"),
    ("ami-launch-index", "1.0"),
    ("ami-manifest-path", "1.0"),
    ("hostname", "1.0"),
    ("instance-id", "1.0"),
    ("local-ipv4", "1.0"),
    ("public-keys", "1.0"),
    ("reservation-id", "1.0"),
    ("security-groups", "1.0"),
    ("local-hostname", "2007-01-19"),
    ("public-hostname", "2007-01-19"),
    ("public-ipv4", "2007-01-19"),
    ("instance-type", "2007-08-29"),
    ("block-device-mapping", "2007-12-15"),
    ("placement", "2008-02-01"),
    ("instance-action", "2008-09-01"),
];

/// Longest path answered; anything longer is no path of the tree.
pub const MAX_PATH: usize = 1024;

/// Answers a request from the trees.
pub fn answer(i: &Instance, req: &Request) -> Answer {
    if req.method == Method::Post {
        return Answer::text(405, "405 Method Not Allowed\n");
    }
    let segs = match segments(&req.path) {
        Ok(s) => s,
        Err(why) => return Answer::text(400, format!("400 Bad Request\n\n{why}\n")),
    };
    match segs.as_slice() {
        [] => listing(EC2_VERSIONS.iter().copied().chain(["latest"])),
        ["openstack"] => listing(OPENSTACK_VERSIONS.iter().copied().chain(["latest"])),
        ["openstack", v, rest @ ..] => match version(OPENSTACK_VERSIONS, v) {
            Some(v) => openstack(i, v, rest),
            None => Answer::not_found(),
        },
        [v, rest @ ..] => match version(EC2_VERSIONS, v) {
            Some(v) => ec2(i, v, rest),
            None => Answer::not_found(),
        },
    }
}

/// The path's segments. Empty segments (`//`, a trailing `/`) are dropped,
/// as Nova's normalisation drops them; `.`, `..` and escapes are refused, so
/// no spelling of a path reaches outside what it names.
fn segments(path: &str) -> Result<Vec<&str>, &'static str> {
    if path.len() > MAX_PATH {
        return Err("The path is too long.");
    }
    let mut out = Vec::new();
    for s in path.split('/').filter(|s| !s.is_empty()) {
        if s == "." || s == ".." {
            return Err("A path may not contain '.' or '..' segments.");
        }
        if !s
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'='))
        {
            return Err("A path may contain only letters, digits and - _ . =");
        }
        out.push(s);
    }
    Ok(out)
}

/// `latest` is the newest; an unknown version is none.
fn version(known: &'static [&'static str], v: &str) -> Option<&'static str> {
    if v == "latest" {
        return known.last().copied();
    }
    known.iter().copied().find(|k| *k == v)
}

fn listing<'a>(items: impl IntoIterator<Item = &'a str>) -> Answer {
    Answer::text(200, items.into_iter().collect::<Vec<_>>().join("\n"))
}

fn openstack(i: &Instance, v: &str, rest: &[&str]) -> Answer {
    let present = |name: &str| name != "user_data" || i.user_data.is_some();
    match rest {
        [] => listing(
            OPENSTACK_FILES
                .iter()
                .filter(|(name, since)| *since <= v && present(name))
                .map(|(name, _)| *name),
        ),
        [file] => {
            let Some((name, _)) = OPENSTACK_FILES
                .iter()
                .find(|(name, since)| name == file && *since <= v && present(name))
            else {
                return Answer::not_found();
            };
            match *name {
                "meta_data.json" => Answer::json(&meta_data(i, v)),
                "network_data.json" => Answer::json(&network_data::render(i)),
                "vendor_data.json" | "vendor_data2.json" => Answer::json(&json!({})),
                // No password was posted: Nova answers an empty body.
                "password" => Answer::text(200, ""),
                _ => Answer {
                    status: 200,
                    content_type: "application/octet-stream",
                    body: i.user_data.clone().unwrap_or_default(),
                },
            }
        }
        _ => Answer::not_found(),
    }
}

/// `meta_data.json` as Nova writes it for version `v`.
fn meta_data(i: &Instance, v: &str) -> Value {
    let mut m = Map::new();
    m.insert("uuid".into(), json!(i.device_id));
    m.insert("name".into(), json!(i.name));
    m.insert("hostname".into(), json!(i.hostname));
    m.insert("launch_index".into(), json!(0));
    m.insert("availability_zone".into(), json!(i.availability_zone));
    if !i.meta.is_empty() {
        m.insert("meta".into(), json!(i.meta));
    }
    if !i.public_keys.is_empty() {
        let keys: Map<String, Value> = i
            .public_keys
            .iter()
            .map(|(n, k)| (n.clone(), json!(k)))
            .collect();
        m.insert("public_keys".into(), Value::Object(keys));
        m.insert(
            "keys".into(),
            json!(
                i.public_keys
                    .iter()
                    .map(|(n, k)| json!({"name": n, "type": "ssh", "data": k}))
                    .collect::<Vec<_>>()
            ),
        );
    }
    if v >= "2013-04-04" {
        m.insert("random_seed".into(), json!(random_seed()));
    }
    if v >= "2015-10-15" {
        m.insert("project_id".into(), json!(i.project_id));
    }
    if v >= "2016-06-30" {
        m.insert("devices".into(), json!([]));
    }
    if v >= "2020-10-14" {
        m.insert("dedicated_cpus".into(), json!([]));
    }
    Value::Object(m)
}

/// 512 random bytes, base64, fresh on every read (Nova's `random_seed`).
fn random_seed() -> String {
    let mut seed = [0u8; 512];
    // Without entropy the seed is left out rather than made predictable.
    if getrandom::fill(&mut seed).is_err() {
        return String::new();
    }
    base64::engine::general_purpose::STANDARD.encode(seed)
}

fn ec2(i: &Instance, v: &str, rest: &[&str]) -> Answer {
    match rest {
        [] => {
            let mut items = vec!["meta-data/"];
            if i.user_data.is_some() {
                items.push("user-data");
            }
            listing(items)
        }
        ["user-data"] => match &i.user_data {
            Some(u) => Answer {
                status: 200,
                content_type: "application/octet-stream",
                body: u.clone(),
            },
            None => Answer::not_found(),
        },
        ["meta-data", path @ ..] => {
            let tree = ec2_tree(i, v);
            let mut node = &tree;
            for seg in path {
                match node.get(*seg) {
                    Some(n) => node = n,
                    None => return Answer::not_found(),
                }
            }
            match node {
                Value::String(s) => Answer::text(200, s.clone()),
                Value::Object(children) => {
                    // `public-keys/` lists `<index>=<name>`, as EC2 does.
                    let lines: Vec<String> = children
                        .iter()
                        .map(|(k, child)| match child.get("_name") {
                            Some(Value::String(name)) => format!("{k}={name}"),
                            _ if child.is_object() => format!("{k}/"),
                            _ => k.clone(),
                        })
                        .filter(|l| l != "_name")
                        .collect();
                    Answer::text(200, lines.join("\n"))
                }
                _ => Answer::not_found(),
            }
        }
        _ => Answer::not_found(),
    }
}

/// The EC2 `meta-data` tree of version `v`, as nested objects (a string is
/// a leaf).
fn ec2_tree(i: &Instance, v: &str) -> Value {
    let local = i.local_ipv4.map(|a| a.to_string()).unwrap_or_default();
    let public = i.public_ipv4.map(|a| a.to_string()).unwrap_or_default();
    let mut m = Map::new();
    for (key, since) in EC2_KEYS {
        if *since > v {
            continue;
        }
        let value = match *key {
            "ami-id" => json!("ami-00000000"),
            "ami-launch-index" => json!("0"),
            "ami-manifest-path" => json!("FIXME"),
            "hostname" | "local-hostname" => json!(i.hostname),
            "public-hostname" => json!(if public.is_empty() {
                &i.hostname
            } else {
                &public
            }),
            "instance-id" => json!(i.device_id),
            "local-ipv4" => json!(local),
            "public-ipv4" => json!(public),
            "reservation-id" => json!(format!(
                "r-{}",
                i.project_id.chars().take(8).collect::<String>()
            )),
            "security-groups" => json!(i.security_groups.join("\n")),
            "instance-type" => json!(""),
            "instance-action" => json!("none"),
            "block-device-mapping" => json!({"ami": "vda", "root": "/dev/vda"}),
            "placement" => json!({"availability-zone": i.availability_zone}),
            "public-keys" => {
                if i.public_keys.is_empty() {
                    continue;
                }
                let keys: Map<String, Value> = i
                    .public_keys
                    .iter()
                    .enumerate()
                    .map(|(n, (name, key))| {
                        (n.to_string(), json!({"_name": name, "openssh-key": key}))
                    })
                    .collect();
                Value::Object(keys)
            }
            _ => continue,
        };
        m.insert(key.to_string(), value);
    }
    Value::Object(m)
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::facts::{Link, SubnetFacts};
    use bytes::Bytes;

    pub fn instance() -> Instance {
        Instance {
            port_id: "cd9f6d46-4a3a-43ab-a466-994af9db96fc".into(),
            device_id: "d8e02d56-2648-49a3-bf97-6be8f1204f38".into(),
            project_id: "6f70656e737461636b20697320636f6f6c".into(),
            address: "10.0.0.5".parse().unwrap(),
            hostname: "vm1".into(),
            name: "vm1".into(),
            availability_zone: "nova".into(),
            public_keys: vec![("mykey".into(), "ssh-ed25519 AAAA test".into())],
            user_data: Some(Bytes::from_static(b"#cloud-config\n")),
            meta: Default::default(),
            local_ipv4: Some("10.0.0.5".parse().unwrap()),
            public_ipv4: Some("172.24.4.10".parse().unwrap()),
            mac: "fa:16:3e:9c:bf:3d".parse().unwrap(),
            security_groups: vec!["default".into()],
            links: vec![Link {
                port_id: "cd9f6d46-4a3a-43ab-a466-994af9db96fc".into(),
                network_id: "net-1".into(),
                mac: "fa:16:3e:9c:bf:3d".parse().unwrap(),
                mtu: 1450,
                subnets: vec![SubnetFacts {
                    address: "10.0.0.5".parse().unwrap(),
                    cidr: "10.0.0.0/24".parse().unwrap(),
                    gateway: Some("10.0.0.1".parse().unwrap()),
                    ipv6_address_mode: None,
                    host_routes: vec![(
                        "192.168.100.0/24".parse().unwrap(),
                        "10.0.0.254".parse().unwrap(),
                    )],
                    dns: vec!["10.0.0.2".parse().unwrap()],
                }],
            }],
        }
    }

    fn get(i: &Instance, path: &str) -> Answer {
        answer(
            i,
            &Request {
                method: Method::Get,
                path: path.into(),
                query: None,
                body: Bytes::new(),
            },
        )
    }

    fn text(a: &Answer) -> &str {
        std::str::from_utf8(&a.body).unwrap()
    }

    #[test]
    fn the_version_lists_are_novas() {
        let i = instance();
        let root = get(&i, "/");
        assert_eq!(root.status, 200);
        assert!(text(&root).starts_with("1.0\n2007-01-19\n"));
        assert!(text(&root).ends_with("2009-04-04\nlatest"));
        let os = get(&i, "/openstack");
        assert_eq!(text(&os).lines().last(), Some("latest"));
        assert!(text(&os).lines().any(|l| l == "2018-08-27"));
        assert_eq!(get(&i, "/openstack/").body, os.body);
    }

    #[test]
    fn a_version_lists_the_files_it_has() {
        let mut i = instance();
        assert_eq!(
            text(&get(&i, "/openstack/2012-08-10")),
            "meta_data.json\nuser_data"
        );
        assert_eq!(
            text(&get(&i, "/openstack/latest/")),
            "meta_data.json\nuser_data\npassword\nvendor_data.json\nnetwork_data.json\nvendor_data2.json"
        );
        i.user_data = None;
        assert!(!text(&get(&i, "/openstack/latest")).contains("user_data"));
        assert_eq!(get(&i, "/openstack/latest/user_data").status, 404);
        assert_eq!(
            get(&i, "/openstack/2012-08-10/network_data.json").status,
            404
        );
    }

    #[test]
    fn meta_data_carries_what_cloud_init_requires() {
        let i = instance();
        let a = get(&i, "/openstack/2018-08-27/meta_data.json");
        assert_eq!((a.status, a.content_type), (200, "application/json"));
        let v: Value = serde_json::from_slice(&a.body).unwrap();
        assert_eq!(v["uuid"], "d8e02d56-2648-49a3-bf97-6be8f1204f38");
        assert_eq!(v["hostname"], "vm1");
        assert_eq!(v["public_keys"]["mykey"], "ssh-ed25519 AAAA test");
        assert_eq!(v["keys"][0]["type"], "ssh");
        assert_eq!(v["project_id"], "6f70656e737461636b20697320636f6f6c");
        let seed = base64::engine::general_purpose::STANDARD
            .decode(v["random_seed"].as_str().unwrap())
            .unwrap();
        assert_eq!(seed.len(), 512);
        assert!(v.get("dedicated_cpus").is_none());
        let old: Value =
            serde_json::from_slice(&get(&i, "/openstack/2012-08-10/meta_data.json").body).unwrap();
        assert!(old.get("random_seed").is_none() && old.get("project_id").is_none());
        assert_eq!(
            text(&get(&i, "/openstack/latest/user_data")),
            "#cloud-config\n"
        );
    }

    #[test]
    fn the_ec2_tree_lists_and_answers() {
        let i = instance();
        let top = get(&i, "/latest/meta-data/");
        let keys: Vec<&str> = text(&top).lines().collect();
        for k in [
            "instance-id",
            "local-ipv4",
            "public-ipv4",
            "hostname",
            "local-hostname",
            "placement/",
            "public-keys/",
        ] {
            assert!(keys.contains(&k), "{k} missing from {keys:?}");
        }
        assert_eq!(
            text(&get(&i, "/latest/meta-data/instance-id")),
            "d8e02d56-2648-49a3-bf97-6be8f1204f38"
        );
        assert_eq!(text(&get(&i, "/latest/meta-data/local-ipv4")), "10.0.0.5");
        assert_eq!(
            text(&get(&i, "/latest/meta-data/public-ipv4")),
            "172.24.4.10"
        );
        assert_eq!(
            text(&get(
                &i,
                "/2009-04-04/meta-data/placement/availability-zone"
            )),
            "nova"
        );
        assert_eq!(text(&get(&i, "/latest/meta-data/public-keys/")), "0=mykey");
        assert_eq!(
            text(&get(&i, "/latest/meta-data/public-keys/0/openssh-key")),
            "ssh-ed25519 AAAA test"
        );
        // Keys by version: placement came with 2008-02-01.
        assert_eq!(get(&i, "/2007-01-19/meta-data/placement/").status, 404);
        assert_eq!(text(&get(&i, "/latest/user-data")), "#cloud-config\n");
        assert_eq!(get(&i, "/latest/meta-data/nosuch").status, 404);
        assert_eq!(get(&i, "/latest/meta-data/instance-id/deeper").status, 404);
    }

    #[test]
    fn bad_paths_are_refused_not_followed() {
        let i = instance();
        for p in [
            "/openstack/../latest/meta-data/",
            "/openstack/latest/./meta_data.json",
            "/openstack/%2e%2e/latest",
            "/latest/meta-data/\u{0}",
        ] {
            assert_eq!(get(&i, p).status, 400, "{p}");
        }
        assert_eq!(get(&i, &format!("/{}", "a".repeat(MAX_PATH))).status, 400);
        for p in [
            "/1999-01-01/meta-data/",
            "/openstack/2011-01-01/meta_data.json",
            "/nosuch",
        ] {
            assert_eq!(get(&i, p).status, 404, "{p}");
        }
        let post = answer(
            &i,
            &Request {
                method: Method::Post,
                path: "/openstack/latest/password".into(),
                query: None,
                body: Bytes::from_static(b"x"),
            },
        );
        assert_eq!(post.status, 405);
    }
}
