//! The host's store, one suite over both backends: the embedded SQLite store and PostgreSQL
//! (a fresh database per test on the server at `CONSISTENTID_TEST_DATABASE_URL`, which
//! scripts/test.sh starts; without it the PostgreSQL half is skipped, except under CI where
//! that is a failure). Then what only a shared store has: leases that run out, fencing of a
//! worker that lost its job, claims racing over many rows, exact admission across processes,
//! and processes migrating one empty database together.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use consistentid_core::api::{Metrics, PredictionInput, Status};
use consistentid_native::server::store::{
    Blobs, Fence, LOST_TWICE, PgStore, Record, SqliteStore, Store,
};
use sqlx::Connection;

fn record(id: &str, owner: &str) -> Record {
    Record {
        seq: 0,
        id: id.into(),
        owner: owner.into(),
        model: "m".into(),
        version: "v".into(),
        status: Status::Starting,
        input: PredictionInput::default(),
        face_file: None,
        keep_face: false,
        outputs: Vec::new(),
        output_metadata: Vec::new(),
        candidates: None,
        error: None,
        logs: String::new(),
        metrics: Metrics::default(),
        created_at: 1_700_000_000.0,
        started_at: None,
        completed_at: None,
        attempts: 0,
    }
}

/// A fresh database on the test server: its URL, or `None` when there is no server.
async fn fresh_database() -> Option<String> {
    let Ok(admin) = std::env::var("CONSISTENTID_TEST_DATABASE_URL") else {
        assert!(
            std::env::var_os("CI").is_none(),
            "CI must give the store tests a database (CONSISTENTID_TEST_DATABASE_URL; scripts/test.sh starts one)"
        );
        eprintln!("skipped: no database (set CONSISTENTID_TEST_DATABASE_URL)");
        return None;
    };
    let name = format!("t_{}", uuid_like());
    let mut conn = sqlx::PgConnection::connect(&admin).await.unwrap();
    sqlx::raw_sql(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
        .execute(&mut conn)
        .await
        .unwrap();
    let (base, _) = admin.rsplit_once('/').unwrap();
    Some(format!("{base}/{name}"))
}

fn uuid_like() -> String {
    let mut bytes = [0u8; 8];
    getrandom::fill(&mut bytes).unwrap();
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// The store on PostgreSQL, its files in a bucket of the S3 server `CONSISTENTID_TEST_S3`
/// names (one per `files` folder: stores opened on one folder share it), else in `files`.
async fn pg_store(url: &str, files: &std::path::Path) -> PgStore {
    let blobs = match std::env::var("CONSISTENTID_TEST_S3") {
        Ok(endpoint) => {
            use std::hash::{Hash, Hasher};
            let mut h = std::collections::hash_map::DefaultHasher::new();
            files.hash(&mut h);
            let bucket = format!("conformance-{:016x}", h.finish());
            let created = ureq::put(&format!("{endpoint}/{bucket}")).send_empty();
            assert!(created.is_ok(), "{created:?}");
            Blobs::bucket(&format!(
                "s3://{bucket}/x?endpoint={endpoint}&region=us-east-1&access_key_id=t&secret_access_key=t"
            ))
            .unwrap()
        }
        Err(_) => Blobs::open(files).unwrap(),
    };
    PgStore::connect(url, blobs, true).await.unwrap()
}

/// What every backend must do alike.
async fn conformance(store: &dyn Store) {
    let lease = Duration::from_secs(30);
    // Admission: a cap for everyone and one per owner, checked in the insert.
    for id in ["a", "b"] {
        assert!(
            store
                .insert_if_room(&record(id, "o"), 3, 2)
                .await
                .unwrap()
                .is_some()
        );
    }
    assert!(
        store
            .insert_if_room(&record("x", "o"), 3, 2)
            .await
            .unwrap()
            .is_none()
    );
    assert!(
        store
            .insert_if_room(&record("c", "p"), 3, 2)
            .await
            .unwrap()
            .is_some()
    );
    assert!(
        store
            .insert_if_room(&record("y", "q"), 3, 2)
            .await
            .unwrap()
            .is_none()
    );
    assert_eq!(store.queued().await.unwrap(), ["a", "b", "c"]);
    assert_eq!(store.count_queued().await.unwrap(), 3);
    assert_eq!(store.count_queued_of("o").await.unwrap(), 2);
    let c = store.get("c").await.unwrap().unwrap();
    assert_eq!(store.queue_position(c.seq).await.unwrap(), 2);
    assert_eq!(c.created_at, 1_700_000_000.0);
    assert!(store.get("nope").await.unwrap().is_none());
    let listed = store.list("o", None, 10).await.unwrap();
    assert_eq!(
        listed.iter().map(|r| r.id.as_str()).collect::<Vec<_>>(),
        ["b", "a"]
    );
    assert!(store.has_newer("o", listed[1].seq).await.unwrap());

    // A claim, its fence, and an end written once.
    let a = store.claim("w1", lease).await.unwrap().unwrap();
    assert_eq!(
        (a.id.as_str(), a.status, a.attempts),
        ("a", Status::Processing, 1)
    );
    assert!(a.started_at.is_some());
    let fence = Fence::of(&a, "w1");
    assert_eq!(store.heartbeat(&fence, lease).await.unwrap(), Some(false));
    let out = store
        .add_file(b"png", "o", "1-0.png", "image/png", "output", Some("a"))
        .await
        .unwrap();
    assert!(
        store
            .set_progress(&fence, std::slice::from_ref(&out.id), &[], "step 1\n")
            .await
            .unwrap()
    );
    let stale = Fence {
        attempt: 7,
        ..fence.clone()
    };
    assert!(!store.set_progress(&stale, &[], &[], "").await.unwrap());
    assert!(!store.cancel_queued("a").await.unwrap());
    assert!(
        store
            .finish(
                &fence,
                Status::Succeeded,
                None,
                "done\n",
                &Metrics::default()
            )
            .await
            .unwrap()
    );
    assert!(
        !store
            .finish(
                &fence,
                Status::Failed,
                Some("late"),
                "",
                &Metrics::default()
            )
            .await
            .unwrap()
    );
    assert_eq!(store.heartbeat(&fence, lease).await.unwrap(), None);
    let a = store.get("a").await.unwrap().unwrap();
    assert_eq!(
        (a.status, a.outputs.clone(), a.logs.as_str()),
        (Status::Succeeded, vec![out.id.clone()], "done\n")
    );
    assert!(a.completed_at.is_some());

    // A graceful stop puts the job back without counting the attempt.
    let b = store.claim("w1", lease).await.unwrap().unwrap();
    assert_eq!(b.id, "b");
    assert!(store.requeue(&Fence::of(&b, "w1")).await.unwrap());
    let b = store.get("b").await.unwrap().unwrap();
    assert_eq!((b.status, b.attempts), (Status::Starting, 0));
    assert!(store.cancel_queued("b").await.unwrap());
    assert_eq!(store.queued().await.unwrap(), ["c"]);

    // Events: ids reserved ahead, replayed in order, a floor above everything sent.
    // Blocks never overlap, whoever asks, and start above what the asker already used.
    assert_eq!(store.reserve_events("c", 0, 1000).await.unwrap(), Some(1));
    assert_eq!(
        store.reserve_events("c", 5, 1000).await.unwrap(),
        Some(1001)
    );
    assert_eq!(
        store.reserve_events("c", 2500, 10).await.unwrap(),
        Some(2501)
    );
    assert_eq!(store.reserve_events("nope", 0, 1000).await.unwrap(), None);
    store
        .add_event("c", 1, "status", r#"{"status":"starting"}"#)
        .await
        .unwrap();
    store
        .add_event("c", 3, "log", r#""hi ünïcode""#)
        .await
        .unwrap();
    let events = store.events_after("c", 1).await.unwrap();
    assert_eq!(
        events,
        [(3, "log".to_string(), r#""hi ünïcode""#.to_string())]
    );
    assert_eq!(store.event_floor("c").await.unwrap(), 2510);

    // Files: bytes back as stored, gone with the record.
    let up = store
        .add_file(b"face", "o", "f\u{e9}ce.jpg", "image/jpeg", "upload", None)
        .await
        .unwrap();
    assert_eq!(store.read_blob(&up).await.unwrap(), b"face");
    let got = store.file(&up.id).await.unwrap().unwrap();
    assert_eq!(
        (got.name.as_str(), got.size, got.prediction),
        ("f\u{e9}ce.jpg", 4, None)
    );
    assert_eq!(
        store.stale_uploads(got.created_at + 1.0).await.unwrap(),
        [up.id.as_str()]
    );
    store.attach_file(&up.id, "c").await.unwrap();
    assert!(
        store
            .stale_uploads(got.created_at + 1.0)
            .await
            .unwrap()
            .is_empty()
    );
    store.delete_file(&up.id).await.unwrap();
    assert!(store.file(&up.id).await.unwrap().is_none());
    assert!(store.read_blob(&up).await.is_err());

    // Shares keep a result past retention; deleting a prediction names its files.
    let share = store.create_share("a", false).await.unwrap();
    assert_eq!(
        store.share(&share).await.unwrap(),
        Some(("a".to_string(), false))
    );
    assert!(!store.face_shared("whatever").await.unwrap());
    let far = 4_000_000_000.0;
    let expired: HashSet<String> = store.expired(far).await.unwrap().into_iter().collect();
    assert_eq!(expired, HashSet::from(["b".to_string()]));
    assert_eq!(store.delete_shares("a").await.unwrap(), 1);
    assert_eq!(store.delete("a").await.unwrap(), [out.id.as_str()]);
    assert!(store.get("a").await.unwrap().is_none());
    assert!(store.share(&share).await.unwrap().is_none());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_embedded_store_conforms() {
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(dir.path()).unwrap();
    conformance(&store).await;
}

/// What only the embedded store promises: one blob for equal files (gone with the last record),
/// and a second open of the same folder (migrations already applied) finds everything.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_embedded_store_shares_blobs_and_reopens() {
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(dir.path()).unwrap();
    store
        .insert_if_room(&record("q", "o"), 10, 10)
        .await
        .unwrap();
    let f1 = store
        .add_file(b"same", "o", "x", "image/png", "upload", None)
        .await
        .unwrap();
    let f2 = store
        .add_file(b"same", "p", "y", "image/png", "upload", None)
        .await
        .unwrap();
    assert_eq!(f1.sha256, f2.sha256);
    drop(store);
    let again = SqliteStore::open(dir.path()).unwrap();
    assert_eq!(again.queued().await.unwrap(), ["q"]);
    again.delete_file(&f1.id).await.unwrap();
    assert_eq!(again.read_blob(&f2).await.unwrap(), b"same");
    again.delete_file(&f2.id).await.unwrap();
    assert!(again.read_blob(&f2).await.is_err());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_postgres_store_conforms() {
    let Some(url) = fresh_database().await else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let store = pg_store(&url, dir.path()).await;
    conformance(&store).await;
    assert!(!store.describe().contains("password"));

    // An object no file names (its write's answer was lost) is swept; named ones stay.
    let kept = store
        .add_file(b"kept", "o", "a.png", "image/png", "output", None)
        .await
        .unwrap();
    store.blobs().put("o/orphan", b"lost answer").await.unwrap();
    assert_eq!(store.sweep_orphans(Duration::ZERO).await.unwrap(), 1);
    assert!(store.blobs().get("o/orphan").await.is_err());
    assert_eq!(store.read_blob(&kept).await.unwrap(), b"kept");
    assert_eq!(store.sweep_orphans(Duration::ZERO).await.unwrap(), 0);
    // Young objects wait (their row may be on its way).
    store.blobs().put("u/young", b"x").await.unwrap();
    assert_eq!(
        store
            .sweep_orphans(Duration::from_secs(3600))
            .await
            .unwrap(),
        0
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lost_lease_goes_to_another_worker_once_then_fails() {
    let Some(url) = fresh_database().await else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let store = pg_store(&url, dir.path()).await;
    let short = Duration::from_millis(200);
    store
        .insert_if_room(&record("j", "o"), 10, 10)
        .await
        .unwrap();
    let first = store.claim("w1", short).await.unwrap().unwrap();
    let f1 = Fence::of(&first, "w1");
    // Not yet run out: nothing to reap.
    assert!(store.reap().await.unwrap().again.is_empty());
    tokio::time::sleep(Duration::from_millis(400)).await;
    let reaped = store.reap().await.unwrap();
    assert_eq!(reaped.again, ["j"]);
    // The zombie's writes change nothing.
    assert_eq!(store.heartbeat(&f1, short).await.unwrap(), None);
    assert!(
        !store
            .finish(&f1, Status::Succeeded, None, "", &Metrics::default())
            .await
            .unwrap()
    );
    let second = store.claim("w2", short).await.unwrap().unwrap();
    assert_eq!((second.id.as_str(), second.attempts), ("j", 2));
    let f2 = Fence::of(&second, "w2");
    assert!(!store.set_progress(&f1, &[], &[], "zombie").await.unwrap());
    // The second loss is final.
    tokio::time::sleep(Duration::from_millis(400)).await;
    assert_eq!(store.reap().await.unwrap().failed, ["j"]);
    let j = store.get("j").await.unwrap().unwrap();
    assert_eq!(
        (j.status, j.error.as_deref()),
        (Status::Failed, Some(LOST_TWICE))
    );
    assert!(store.claim("w3", short).await.unwrap().is_none());
    assert_eq!(store.heartbeat(&f2, short).await.unwrap(), None);

    // A cancel asked from another process reaches the worker through its heartbeat, and a job
    // whose worker then dies ends canceled, not queued again.
    store
        .insert_if_room(&record("k", "o"), 10, 10)
        .await
        .unwrap();
    let k = store.claim("w1", short).await.unwrap().unwrap();
    assert!(store.request_cancel("k").await.unwrap());
    assert_eq!(
        store.heartbeat(&Fence::of(&k, "w1"), short).await.unwrap(),
        Some(true)
    );
    tokio::time::sleep(Duration::from_millis(400)).await;
    assert_eq!(store.reap().await.unwrap().failed, ["k"]);
    assert_eq!(
        store.get("k").await.unwrap().unwrap().status,
        Status::Canceled
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn racing_claimers_take_each_job_exactly_once() {
    let Some(url) = fresh_database().await else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(pg_store(&url, dir.path()).await);
    const JOBS: usize = 400;
    for i in 0..JOBS {
        store
            .insert_if_room(&record(&format!("job{i:04}"), "o"), JOBS, JOBS)
            .await
            .unwrap()
            .unwrap();
    }
    let mut claimers = Vec::new();
    for w in 0..8 {
        let store = store.clone();
        claimers.push(tokio::spawn(async move {
            let worker = format!("w{w}");
            let mut mine = Vec::new();
            while let Some(r) = store.claim(&worker, Duration::from_secs(60)).await.unwrap() {
                assert_eq!(r.attempts, 1, "{} claimed twice", r.id);
                mine.push(r.id);
            }
            mine
        }));
    }
    let mut all = Vec::new();
    let mut busy = 0;
    for c in claimers {
        let mine = c.await.unwrap();
        busy += usize::from(!mine.is_empty());
        all.extend(mine);
    }
    let unique: HashSet<&String> = all.iter().collect();
    assert_eq!((all.len(), unique.len()), (JOBS, JOBS));
    assert!(busy > 1, "the claims were not concurrent");
    assert_eq!(store.count_queued().await.unwrap(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn admission_is_exact_across_processes_and_migration_runs_once() {
    let Some(url) = fresh_database().await else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    // Four processes start together on an empty database: one migrates, all start.
    let starts: Vec<_> = (0..4)
        .map(|_| {
            let (url, files) = (url.clone(), dir.path().to_path_buf());
            tokio::spawn(async move { pg_store(&url, &files).await })
        })
        .collect();
    let mut stores = Vec::new();
    for s in starts {
        stores.push(Arc::new(s.await.unwrap()));
    }
    // Each migration (native/migrations/postgres) applied once.
    let files = std::fs::read_dir(concat!(env!("CARGO_MANIFEST_DIR"), "/migrations/postgres"))
        .unwrap()
        .count() as i64;
    let applied: (i64, i64) =
        sqlx::query_as("SELECT count(*), count(DISTINCT version) FROM _sqlx_migrations")
            .fetch_one(stores[0].pool())
            .await
            .unwrap();
    assert_eq!(applied, (files, files));
    // 50 admissions at once through four pools for 10 places.
    let tries: Vec<_> = (0..50)
        .map(|i| {
            let store = stores[i % stores.len()].clone();
            tokio::spawn(async move {
                store
                    .insert_if_room(&record(&format!("r{i:02}"), &format!("o{i}")), 10, 10)
                    .await
                    .unwrap()
                    .is_some()
            })
        })
        .collect();
    let mut accepted = 0;
    for t in tries {
        accepted += usize::from(t.await.unwrap());
    }
    assert_eq!(accepted, 10);
    assert_eq!(stores[1].count_queued().await.unwrap(), 10);
}
