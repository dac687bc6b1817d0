//! Sharded runs as a cluster runs them: separate processes, one per shard, merged; a shard
//! stopped by SIGTERM and resumed; a missing shard named; precomputed scores reviewed without a
//! model (eval and the dashboard agree); a copied binary with no checkout around.

mod common;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::{osteoai, root, run};

/// Rows of a JSON-lines score file: path -> P(positive) (or the error).
fn rows_of(file: &Path) -> BTreeMap<String, Result<f64, String>> {
    let text = std::fs::read_to_string(file).unwrap();
    text.lines()
        .map(|l| {
            let v: serde_json::Value = serde_json::from_str(l).unwrap();
            let path = v["path"].as_str().unwrap().to_string();
            let r = match v["p_fracture"].as_f64() {
                Some(p) => Ok(p),
                None => Err(v["error"].as_str().unwrap_or("").to_string()),
            };
            (path, r)
        })
        .collect()
}

fn assert_same_rows(a: &Path, b: &Path) {
    let (ra, rb) = (rows_of(a), rows_of(b));
    assert_eq!(
        ra.keys().collect::<Vec<_>>(),
        rb.keys().collect::<Vec<_>>(),
        "the same images"
    );
    for (k, x) in &ra {
        match (x, &rb[k]) {
            (Ok(p), Ok(q)) => assert!((p - q).abs() <= 1e-6, "{k}: {p} vs {q}"),
            (x, y) => assert_eq!(x, y, "{k}"),
        }
    }
}

fn spawn_shard(dir: &Path, cache: &Path, i: usize, n: usize, out: &Path, extra: &[&str]) -> Child {
    osteoai(cache)
        .arg("classify")
        .arg(dir)
        .args(["--shard", &format!("{i}/{n}"), "--output"])
        .arg(out)
        .args(extra)
        // One thread per process, as a cluster task with one CPU: several shards on this
        // machine's two cores do not fight over them.
        .env("RAYON_NUM_THREADS", "1")
        .env("OMP_NUM_THREADS", "1")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap()
}

fn wait_ok(c: Child, what: &str) -> String {
    let o = c.wait_with_output().unwrap();
    let err = String::from_utf8_lossy(&o.stderr).into_owned();
    assert!(o.status.success(), "{what}: {err}");
    err
}

/// One unsharded run and `n` shards as concurrent processes with a cache of their own (so
/// every score is computed again, in other batches), merged: the same rows.
fn shards_equal_one_run(
    dir: &Path,
    n: usize,
    unsharded_cache: &Path,
) -> (PathBuf, tempfile::TempDir) {
    let tmp = tempfile::tempdir().unwrap();
    let whole = tmp.path().join("whole.jsonl");
    let (code, _, err) = run(osteoai(unsharded_cache)
        .arg("classify")
        .arg(dir)
        .arg("--output")
        .arg(&whole));
    assert_eq!(code, 0, "{err}");
    let cache = tmp.path().join("shard-cache");
    let parts: Vec<PathBuf> = (0..n)
        .map(|i| tmp.path().join(format!("part{i}.jsonl")))
        .collect();
    let children: Vec<Child> = (0..n)
        .map(|i| spawn_shard(dir, &cache, i, n, &parts[i], &[]))
        .collect();
    let mut sizes = Vec::new();
    for (i, c) in children.into_iter().enumerate() {
        wait_ok(c, &format!("shard {i}"));
        sizes.push(rows_of(&parts[i]).len());
    }
    assert!(
        sizes.iter().all(|&s| s > 0),
        "every shard has images: {sizes:?}"
    );
    let merged = tmp.path().join("merged.jsonl");
    let (code, _, err) = run(osteoai(&cache).arg("merge").arg(&merged).args(&parts));
    assert_eq!(code, 0, "{err}");
    assert!(err.contains(&format!("merged {n} parts")), "{err}");
    assert_same_rows(&whole, &merged);
    assert_eq!(rows_of(&merged).len(), sizes.iter().sum::<usize>());
    (merged, tmp)
}

#[test]
fn four_shards_merge_to_the_rows_of_one_run_on_the_fixtures() {
    let cache = tempfile::tempdir().unwrap();
    let (merged, _keep) = shards_equal_one_run(&root().join("fixtures/demo"), 4, cache.path());
    // The merged file is a score file like any other: eval reads it with no model.
    let meta: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(format!("{}.meta.json", merged.display())).unwrap(),
    )
    .unwrap();
    assert_eq!(meta["complete"], true);
    assert_eq!(meta["shard"], serde_json::Value::Null);
    // The same parts merged into Parquet: eval reads it to the same metrics.
    let dir = merged.parent().unwrap();
    let parts: Vec<PathBuf> = (0..4).map(|i| dir.join(format!("part{i}.jsonl"))).collect();
    let pq = dir.join("merged.parquet");
    let (code, _, err) = run(osteoai(cache.path()).arg("merge").arg(&pq).args(&parts));
    assert_eq!(code, 0, "{err}");
    assert!(std::fs::read(&pq).unwrap().starts_with(b"PAR1"));
    let sets = |scores: &Path| -> serde_json::Value {
        let (code, out, err) = run(osteoai(cache.path())
            .args(["eval", "fixtures/demo", "--format", "json", "--scores"])
            .arg(scores));
        assert_eq!(code, 0, "{err}");
        serde_json::from_str::<serde_json::Value>(&out).unwrap()["sets"].clone()
    };
    assert_eq!(sets(&merged), sets(&pq));
    // Parquet is written whole: a resumable run refuses it with the way out.
    let (code, _, err) = run(osteoai(cache.path())
        .args(["classify", "fixtures/demo", "--resume", "--output"])
        .arg(dir.join("x.parquet")));
    assert_eq!(code, 2);
    assert!(err.contains("Parquet cannot be appended"), "{err}");
}

#[test]
fn four_shards_merge_to_the_rows_of_one_run_on_the_reference_test_split() {
    let Some(data) = common::data() else {
        return;
    };
    shards_equal_one_run(&data.join("test"), 4, &common::shared_cache());
}

fn lines(file: &Path) -> usize {
    std::fs::read_to_string(file)
        .map(|t| t.lines().count())
        .unwrap_or(0)
}

#[test]
fn a_shard_stopped_by_sigterm_resumes_to_the_same_merged_result() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    common::demo_copies(&data, 6);
    let whole = tmp.path().join("whole.jsonl");
    let (code, _, err) = run(osteoai(&tmp.path().join("c0"))
        .arg("classify")
        .arg(&data)
        .arg("--output")
        .arg(&whole));
    assert_eq!(code, 0, "{err}");
    let n = 4;
    let cache = tmp.path().join("c1");
    let parts: Vec<PathBuf> = (0..n)
        .map(|i| tmp.path().join(format!("s.{i}.jsonl")))
        .collect();
    for i in [0, 2, 3] {
        wait_ok(spawn_shard(&data, &cache, i, n, &parts[i], &[]), "shard");
    }
    // Shard 1, two images a batch: signalled once its first rows are on disk.
    let child = spawn_shard(&data, &cache, 1, n, &parts[1], &["--batch", "2"]);
    let start = Instant::now();
    while lines(&parts[1]) < 2 {
        assert!(
            start.elapsed() < Duration::from_secs(120),
            "shard 1 writes rows"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    let pid = child.id().to_string();
    assert!(
        Command::new("kill")
            .args(["-TERM", &pid])
            .status()
            .unwrap()
            .success()
    );
    let o = child.wait_with_output().unwrap();
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(75), "stopped with status 75: {err}");
    assert!(
        err.contains("stopped by SIGTERM") && err.contains("--resume"),
        "{err}"
    );
    let kept = lines(&parts[1]);
    let shard_size = rows_of(&whole)
        .keys()
        .filter(|p| {
            let rel = Path::new(p).strip_prefix(&data).unwrap();
            osteoai_core::shard::shard_of(rel, n) == 1
        })
        .count();
    assert!(
        kept >= 2 && kept < shard_size,
        "stopped mid-run: {kept} of {shard_size}"
    );
    let meta = std::fs::read_to_string(format!("{}.meta.json", parts[1].display())).unwrap();
    assert!(meta.contains("\"complete\": false"), "{meta}");
    // Merging now names what is missing and writes nothing.
    let merged = tmp.path().join("merged.jsonl");
    let (code, _, err) = run(osteoai(&cache).arg("merge").arg(&merged).args(&parts));
    assert_eq!(code, 1);
    assert!(
        err.contains("did not finish") && err.contains("shard 1/4"),
        "{err}"
    );
    assert!(!merged.exists());
    // Resumed: only the rest is scored, and the merge is the unsharded run's rows.
    let (code, _, err) = run(osteoai(&cache)
        .arg("classify")
        .arg(&data)
        .args(["--shard", "1/4", "--resume", "--output"])
        .arg(&parts[1]));
    assert_eq!(code, 0, "{err}");
    assert!(err.contains(&format!("{kept} rows already there")), "{err}");
    let (code, _, err) = run(osteoai(&cache).arg("merge").arg(&merged).args(&parts));
    assert_eq!(code, 0, "{err}");
    assert_same_rows(&whole, &merged);
}

#[test]
fn merge_names_a_missing_shard_and_refuses_to_write() {
    let tmp = tempfile::tempdir().unwrap();
    let demo = root().join("fixtures/demo");
    let parts: Vec<PathBuf> = (0..4)
        .map(|i| tmp.path().join(format!("p{i}.csv")))
        .collect();
    for i in [0, 1, 3] {
        wait_ok(
            spawn_shard(&demo, tmp.path(), i, 4, &parts[i], &[]),
            "shard",
        );
    }
    let out = tmp.path().join("all.csv");
    let given = [&parts[0], &parts[1], &parts[3]];
    let (code, _, err) = run(osteoai(tmp.path()).arg("merge").arg(&out).args(given));
    assert_eq!(code, 1);
    assert!(err.contains("shard 2/4 is missing"), "{err}");
    assert!(
        err.contains("missing") && err.contains("(shard 2/4)"),
        "{err}"
    );
    assert!(!out.exists(), "nothing written");
    // Given twice: duplicates are named too.
    let (code, _, err) = run(osteoai(tmp.path())
        .arg("merge")
        .arg(&out)
        .args(given)
        .arg(&parts[0]));
    assert_eq!(code, 1);
    assert!(err.contains("more than one row"), "{err}");
    // --allow-incomplete writes what there is, marked incomplete.
    let (code, _, _) = run(osteoai(tmp.path())
        .arg("merge")
        .arg(&out)
        .args(given)
        .arg("--allow-incomplete"));
    assert_eq!(code, 1);
    let text = std::fs::read_to_string(&out).unwrap();
    assert!(text.starts_with("path,split,label,p_fracture,predicted,error\n"));
    let meta = std::fs::read_to_string(format!("{}.meta.json", out.display())).unwrap();
    assert!(meta.contains("\"complete\": false"));
}

#[test]
fn shards_from_scheduler_variables() {
    let tmp = tempfile::tempdir().unwrap();
    let demo = root().join("fixtures/demo");
    let mut total = 0;
    for i in 0..3 {
        // Slurm: --array=1-3, so ids 1..3 and MIN 1.
        let out = tmp.path().join(format!("slurm{i}.jsonl"));
        let (code, _, err) = run(osteoai(tmp.path())
            .arg("classify")
            .arg(&demo)
            .arg("--output")
            .arg(&out)
            .env("SLURM_ARRAY_TASK_ID", (i + 1).to_string())
            .env("SLURM_ARRAY_TASK_MIN", "1")
            .env("SLURM_ARRAY_TASK_COUNT", "3"));
        assert_eq!(code, 0, "{err}");
        assert!(
            err.contains(&format!("shard {i}/3 (from SLURM_ARRAY_TASK_ID")),
            "{err}"
        );
        total += rows_of(&out).len();
    }
    assert_eq!(total, 16, "the demo's 16 images, each in one shard");
    // Kubernetes: the index from JOB_COMPLETION_INDEX, the count from --shards; {shard} in the
    // output name.
    let (code, _, err) = run(osteoai(tmp.path())
        .arg("classify")
        .arg(&demo)
        .args(["--shards", "2", "--output"])
        .arg(tmp.path().join("k8s.{shard}.jsonl"))
        .env("JOB_COMPLETION_INDEX", "1"));
    assert_eq!(code, 0, "{err}");
    assert!(
        err.contains("shard 1/2 (from JOB_COMPLETION_INDEX)"),
        "{err}"
    );
    assert!(tmp.path().join("k8s.1.jsonl").is_file());
    // Without --shards the Kubernetes index alone is not enough to know the partition.
    let (code, _, err) = run(osteoai(tmp.path())
        .arg("classify")
        .arg(&demo)
        .args(["--shard", "5/4"]));
    assert_eq!(code, 2);
    assert!(err.contains("below 4"), "{err}");
}

#[test]
fn resume_refuses_another_shard_or_model() {
    let tmp = tempfile::tempdir().unwrap();
    let demo = root().join("fixtures/demo");
    let out = tmp.path().join("s.jsonl");
    wait_ok(spawn_shard(&demo, tmp.path(), 0, 2, &out, &[]), "shard 0/2");
    let (code, _, err) = run(osteoai(tmp.path())
        .arg("classify")
        .arg(&demo)
        .args(["--shard", "1/2", "--resume", "--output"])
        .arg(&out));
    assert_eq!(code, 2);
    assert!(err.contains("holds shard 0/2"), "{err}");
    let (code, _, err) = run(osteoai(tmp.path())
        .arg("classify")
        .arg(&demo)
        .args(["--resume"]));
    assert_eq!(code, 2, "--resume needs --output: {err}");
}

#[test]
fn eval_scores_reads_a_score_file_without_a_model_and_agrees_with_eval() {
    let tmp = tempfile::tempdir().unwrap();
    let demo = root().join("fixtures/demo");
    let out = tmp.path().join("s.csv");
    let (code, _, err) = run(osteoai(tmp.path())
        .arg("classify")
        .arg(&demo)
        .arg("--output")
        .arg(&out));
    assert_eq!(code, 0, "{err}");
    let json = |args: &[&str], cache: &Path| -> serde_json::Value {
        let (code, out, err) = run(osteoai(cache).args(args));
        assert_eq!(code, 0, "{err}");
        serde_json::from_str(&out).unwrap()
    };
    let d = demo.to_str().unwrap();
    let live = json(&["eval", d, "--format", "json"], tmp.path());
    // No model anywhere: --model points at nothing, and the score file is all it needs.
    let from_file = json(
        &[
            "eval",
            d,
            "--scores",
            out.to_str().unwrap(),
            "--format",
            "json",
            "--model",
            "/nonexistent",
        ],
        tmp.path(),
    );
    assert_eq!(live["sets"], from_file["sets"]);
    assert_eq!(live["threshold"], from_file["threshold"]);
    assert!(from_file["device"].as_str().unwrap().starts_with("none"));
}

#[test]
fn dashboard_with_scores_shows_the_matrix_of_eval_scores() {
    if !common::tmux::have_tmux() {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let demo = root().join("fixtures/demo");
    // Scored in two shards and merged, as on a cluster.
    let parts: Vec<PathBuf> = (0..2)
        .map(|i| tmp.path().join(format!("p{i}.jsonl")))
        .collect();
    for (i, p) in parts.iter().enumerate() {
        wait_ok(spawn_shard(&demo, tmp.path(), i, 2, p, &[]), "shard");
    }
    let scores = tmp.path().join("s.jsonl");
    let (code, _, err) = run(osteoai(tmp.path()).arg("merge").arg(&scores).args(&parts));
    assert_eq!(code, 0, "{err}");
    let (code, out, err) = run(osteoai(tmp.path()).args([
        "eval",
        demo.to_str().unwrap(),
        "--scores",
        scores.to_str().unwrap(),
        "--format",
        "json",
    ]));
    assert_eq!(code, 0, "{err}");
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    let c = &v["sets"]["all"]["confusion"];
    let want = [
        c["tp"].as_u64().unwrap(),
        c["fn"].as_u64().unwrap(),
        c["fp"].as_u64().unwrap(),
        c["tn"].as_u64().unwrap(),
    ];
    // A model folder that does not exist: the dashboard must not need one.
    let cmd = format!(
        "cd {} && env {} {} --scores {} {} --model /nonexistent --protocol halfblocks",
        tmp.path().display(),
        common::tmux::isolated_env(&tmp.path().join("dash")),
        env!("CARGO_BIN_EXE_osteoai"),
        scores.display(),
        demo.display()
    );
    let t = common::tmux::Tmux::start("scores", &cmd);
    let screen = t.wait_for("the matrix from the scores", |s| {
        s.contains("scores from s.jsonl") && s.contains("n 16")
    });
    let row = |label: &str| -> Vec<u64> {
        let line = screen
            .lines()
            .find(|l| l.contains(&format!("│{label}")))
            .unwrap_or_else(|| panic!("row {label} in:\n{screen}"));
        line.split('│')
            .nth(line.matches('│').count() - 1)
            .unwrap()
            .split_whitespace()
            .skip(1)
            .filter_map(|w| w.parse().ok())
            .collect()
    };
    let got: Vec<u64> = [row("fractu"), row("nofrac")].concat();
    assert_eq!(
        got, want,
        "dashboard matrix vs eval --scores; screen:\n{screen}"
    );
    common::tmux::quit(&t);
}

#[test]
fn a_copied_binary_works_from_an_empty_folder_with_its_built_in_model() {
    let tmp = tempfile::tempdir().unwrap();
    let bin = tmp.path().join("bin/osteoai");
    std::fs::create_dir_all(bin.parent().unwrap()).unwrap();
    std::fs::copy(env!("CARGO_BIN_EXE_osteoai"), &bin).unwrap();
    let empty = tmp.path().join("empty");
    std::fs::create_dir_all(&empty).unwrap();
    let data = tmp.path().join("data");
    common::copy_tree(&root().join("fixtures/demo"), &data);
    let cache = tmp.path().join("cache");
    let out = tmp.path().join("copied.jsonl");
    let o = Command::new(&bin)
        .current_dir(&empty)
        .env_clear()
        .env("PATH", "/usr/bin:/bin")
        .env("XDG_CACHE_HOME", &cache)
        .env("XDG_STATE_HOME", cache.join("state"))
        .env("XDG_CONFIG_HOME", cache.join("config"))
        .args([
            "classify",
            data.to_str().unwrap(),
            "--output",
            out.to_str().unwrap(),
        ])
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(o.status.success(), "{err}");
    assert!(err.contains("16 scored"), "{err}");
    let unpacked: Vec<_> = std::fs::read_dir(cache.join("osteoai/bundles"))
        .unwrap()
        .filter_map(|e| e.ok())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(unpacked.len(), 1, "{unpacked:?}");
    assert!(unpacked[0].starts_with("default-"));
    // The same scores as the checkout's models/default.
    let here = tmp.path().join("here.jsonl");
    let (code, _, err) = run(osteoai(&tmp.path().join("c2")).args([
        "classify",
        data.to_str().unwrap(),
        "--output",
        here.to_str().unwrap(),
    ]));
    assert_eq!(code, 0, "{err}");
    assert_same_rows(&out, &here);
}
