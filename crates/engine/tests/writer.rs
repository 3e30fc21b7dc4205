//! The writer's guarantees: requests that share a group commit are still
//! applied whole or not at all, and what readers see is what the store holds.

use neutrino_engine::{Engine, EngineConfig};
use neutrino_model::{ApiError, Network, StdAttrs};
use neutrino_store::{SqliteStore, Store};

fn network(id: &str) -> Network {
    Network {
        id: id.to_string(),
        name: id.to_string(),
        admin_state_up: true,
        status: "ACTIVE".into(),
        shared: false,
        router_external: false,
        mtu: 1450,
        port_security_enabled: true,
        network_type: "local".into(),
        physical_network: None,
        segmentation_id: None,
        dns_domain: String::new(),
        std: StdAttrs {
            project_id: "p".into(),
            revision_number: 1,
            ..StdAttrs::default()
        },
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failed_requests_in_a_batch_leave_no_trace() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("db.sqlite");
    let engine = Engine::start(
        Box::new(SqliteStore::open(&path).unwrap()),
        EngineConfig::default(),
    )
    .unwrap();
    // 200 concurrent requests land in shared batches; every odd one writes and then fails.
    let mut tasks = Vec::new();
    for i in 0..200 {
        let e = engine.clone();
        tasks.push(tokio::spawn(async move {
            e.write(move |txn| {
                txn.put_network(network(&format!("n{i:03}")));
                if i % 2 == 1 {
                    return Err(ApiError::bad_request("refused after writing"));
                }
                Ok(())
            })
            .await
        }));
    }
    let mut ok = 0;
    for (i, t) in tasks.into_iter().enumerate() {
        let r = t.await.unwrap();
        assert_eq!(r.is_ok(), i % 2 == 0, "request {i}");
        ok += usize::from(r.is_ok());
    }
    assert_eq!(ok, 100);
    let snap = engine.snapshot();
    assert_eq!(snap.networks.len(), 100);
    assert!(
        snap.networks
            .keys()
            .all(|k| k[1..].parse::<u32>().unwrap() % 2 == 0)
    );
    assert_eq!(
        snap.used("p", "network"),
        100,
        "usage counts follow only committed requests"
    );
    // The store holds exactly what readers saw, and every change has its own revision.
    drop(engine);
    let mut store = SqliteStore::open(&path).unwrap();
    let docs = store.load_all().unwrap();
    assert_eq!(docs.len(), 100);
    assert_eq!(store.revision().unwrap(), 100);
    let feed = store.changes_since(0, 1000).unwrap().unwrap();
    let revs: Vec<u64> = feed.iter().map(|c| c.revision).collect();
    assert_eq!(revs, (1..=100).collect::<Vec<_>>());
}

#[tokio::test]
async fn a_panicking_request_is_rolled_back_and_the_writer_lives_on() {
    let engine = Engine::start(
        Box::new(SqliteStore::in_memory().unwrap()),
        EngineConfig::default(),
    )
    .unwrap();
    let r: Result<(), ApiError> = engine
        .write(|txn| {
            txn.put_network(network("doomed"));
            panic!("a bug in one request");
        })
        .await;
    assert_eq!(r.unwrap_err().kind.status(), 500);
    engine
        .write(|txn| {
            txn.put_network(network("fine"));
            Ok(())
        })
        .await
        .unwrap();
    let snap = engine.snapshot();
    assert!(snap.networks.contains_key("fine"));
    assert!(!snap.networks.contains_key("doomed"));
}
