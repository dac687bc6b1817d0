//! The cluster recipes in deploy/, run here: the Slurm scripts with the array variables set
//! (and fake `sbatch`/`scontrol` that record what they are asked), the Kubernetes manifests
//! parsed, checked for the fields the command line relies on, and their commands run locally
//! with the volumes mapped to folders.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::root;
use serde_norway::Value;

fn bin() -> &'static str {
    env!("CARGO_BIN_EXE_osteoai")
}

/// The environment every recipe run gets: isolated folders, no scheduler variables but those
/// given, one thread per process.
fn script(path: &Path, home: &Path) -> Command {
    let mut c = Command::new("bash");
    c.arg(path)
        .current_dir(home)
        .env_clear()
        .env(
            "PATH",
            format!("{}:/usr/bin:/bin", home.join("fakebin").display()),
        )
        .env("HOME", home)
        .env("XDG_CACHE_HOME", home.join("cache"))
        .env("XDG_STATE_HOME", home.join("state"))
        .env("XDG_CONFIG_HOME", home.join("config"))
        .env("OSTEOAI", bin())
        .env("NO_COLOR", "1");
    c
}

/// Fake scheduler commands that append their arguments to `calls.log`.
fn fake_scheduler(home: &Path) {
    let fake = home.join("fakebin");
    std::fs::create_dir_all(&fake).unwrap();
    for (name, reply) in [("sbatch", "4242;cluster"), ("scontrol", "")] {
        let p = fake.join(name);
        std::fs::write(
            &p,
            format!(
                "#!/bin/bash\necho \"{name} $*\" >> \"{}\"\necho '{reply}'\n",
                home.join("calls.log").display()
            ),
        )
        .unwrap();
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o755)).unwrap();
    }
}

fn rows(file: &Path) -> usize {
    std::fs::read_to_string(file)
        .map(|t| t.lines().count())
        .unwrap_or(0)
}

#[test]
fn slurm_array_tasks_requeue_on_sigterm_and_merge() {
    let home = tempfile::tempdir().unwrap();
    let home = home.path();
    fake_scheduler(home);
    let data = home.join("data");
    let images = common::demo_copies(&data, 6);
    let out = home.join("out");
    let sbatch = root().join("deploy/slurm/classify.sbatch");
    let task = |i: usize| {
        let mut c = script(&sbatch, home);
        c.env("OSTEOAI_DATA_DIR", &data)
            .env("OSTEOAI_OUT_DIR", &out)
            .env("SLURM_ARRAY_JOB_ID", "4242")
            .env("SLURM_JOB_ID", format!("{}", 4300 + i))
            .env("SLURM_ARRAY_TASK_ID", i.to_string())
            .env("SLURM_ARRAY_TASK_MIN", "0")
            .env("SLURM_ARRAY_TASK_COUNT", "4")
            .env("SLURM_CPUS_PER_TASK", "1");
        c
    };
    for i in [0, 2, 3] {
        let o = task(i).output().unwrap();
        assert!(
            o.status.success(),
            "task {i}: {}",
            String::from_utf8_lossy(&o.stderr)
        );
    }
    // Task 1 is signalled as Slurm does before the time limit (--signal=B:TERM): the script
    // forwards it, osteoai flushes and stops (75), the script asks for a requeue.
    let part = out.join("scores.1.jsonl");
    let child = task(1)
        .env("OSTEOAI_ARGS", "--batch 2")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let start = Instant::now();
    while rows(&part) < 2 {
        assert!(
            start.elapsed() < Duration::from_secs(120),
            "task 1 writes rows"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    assert!(
        Command::new("kill")
            .args(["-TERM", &child.id().to_string()])
            .status()
            .unwrap()
            .success()
    );
    let o = child.wait_with_output().unwrap();
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(75), "{err}");
    let calls = std::fs::read_to_string(home.join("calls.log")).unwrap();
    assert!(calls.contains("scontrol requeue 4301"), "{calls}");
    // The requeued task resumes and finishes.
    let o = task(1).output().unwrap();
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(o.status.success(), "{err}");
    assert!(err.contains("rows already there"), "{err}");
    // The dependent merge job.
    let o = script(&root().join("deploy/slurm/merge.sbatch"), home)
        .env("OSTEOAI_DATA_DIR", &data)
        .env("OSTEOAI_OUT_DIR", &out)
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(o.status.success(), "{err}");
    assert_eq!(rows(&out.join("scores.jsonl")), images);
    let metrics = std::fs::read_to_string(out.join("metrics.txt")).unwrap();
    assert!(metrics.contains(&format!("all   {images}")), "{metrics}");
    assert!(
        out.join("cache").is_dir(),
        "OSTEOAI_CACHE under the output folder"
    );
}

#[test]
fn slurm_submit_makes_the_merge_depend_on_the_array() {
    let home = tempfile::tempdir().unwrap();
    let home = home.path();
    fake_scheduler(home);
    let o = script(&root().join("deploy/slurm/submit.sh"), home)
        .arg("8")
        .env("OSTEOAI_DATA_DIR", home)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let calls = std::fs::read_to_string(home.join("calls.log")).unwrap();
    let lines: Vec<&str> = calls.lines().collect();
    assert_eq!(lines.len(), 2, "{calls}");
    assert!(lines[0].contains("--array=0-7") && lines[0].ends_with("classify.sbatch"));
    assert!(lines[1].contains("--dependency=afterok:4242") && lines[1].ends_with("merge.sbatch"));
    // The script's own #SBATCH lines: requeue, and SIGTERM to the script before the limit.
    let text = std::fs::read_to_string(root().join("deploy/slurm/classify.sbatch")).unwrap();
    assert!(text.contains("#SBATCH --requeue"));
    assert!(text.contains("#SBATCH --signal=B:TERM@"));
}

fn yaml(name: &str) -> Value {
    let text = std::fs::read_to_string(root().join("deploy/k8s").join(name)).unwrap();
    serde_norway::from_str(&text).unwrap()
}

fn strings(v: &Value) -> Vec<String> {
    v.as_sequence()
        .unwrap_or_else(|| panic!("a list: {v:?}"))
        .iter()
        .map(|s| match s {
            Value::String(s) => s.clone(),
            Value::Number(n) => n.to_string(),
            other => panic!("{other:?}"),
        })
        .collect()
}

/// The container's mounts: mountPath -> read-only.
fn mounts(c: &Value) -> Vec<(String, bool)> {
    c["volumeMounts"]
        .as_sequence()
        .unwrap()
        .iter()
        .map(|m| {
            (
                m["mountPath"].as_str().unwrap().to_string(),
                m["readOnly"].as_bool().unwrap_or(false),
            )
        })
        .collect()
}

/// `s` with each mount path replaced by a local folder.
fn mapped(s: &str, map: &[(String, PathBuf)]) -> String {
    let mut s = s.to_string();
    for (from, to) in map {
        s = s.replace(&format!("{from}/"), &format!("{}/", to.display()));
        if s == *from {
            s = to.display().to_string();
        }
    }
    s
}

#[test]
fn kubernetes_indexed_job_runs_here_and_merges() {
    let job = yaml("classify-job.yaml");
    assert_eq!(job["apiVersion"], "batch/v1");
    assert_eq!(job["kind"], "Job");
    let spec = &job["spec"];
    assert_eq!(spec["completionMode"], "Indexed");
    let completions = spec["completions"].as_u64().unwrap() as usize;
    let pod = &spec["template"]["spec"];
    assert_eq!(
        pod["restartPolicy"], "Never",
        "podFailurePolicy needs Never"
    );
    assert!(pod["terminationGracePeriodSeconds"].as_u64().unwrap() >= 30);
    // Exit 75 (stopped on SIGTERM after flushing) and disruptions do not count as failures.
    let rules = spec["podFailurePolicy"]["rules"].as_sequence().unwrap();
    assert!(rules.iter().any(|r| r["action"] == "Ignore"
        && r["onExitCodes"]["values"].is_sequence()
        && strings(&r["onExitCodes"]["values"]) == ["75"]));
    assert!(
        rules
            .iter()
            .any(|r| r["action"] == "Ignore"
                && r["onPodConditions"][0]["type"] == "DisruptionTarget")
    );
    let c = &pod["containers"][0];
    let mut argv = strings(&c["command"]);
    argv.extend(strings(&c["args"]));
    assert_eq!(argv[..2], ["osteoai", "classify"]);
    let at = |flag: &str| argv.iter().position(|a| a == flag);
    let shards = at("--shards").expect("--shards");
    assert_eq!(
        argv[shards + 1],
        completions.to_string(),
        "--shards = completions"
    );
    assert!(at("--resume").is_some());
    let output = &argv[at("--output").unwrap() + 1];
    assert!(output.contains("{shard}"), "one output file per index");
    let ms = mounts(c);
    let under = |p: &str, ro: bool| {
        ms.iter()
            .any(|(m, r)| *r == ro && (p == m || p.starts_with(&format!("{m}/"))))
    };
    assert!(
        under(&argv[2], true),
        "the data folder is a read-only volume"
    );
    assert!(under(output, false), "the output is on a writable volume");
    let cache = c["env"]
        .as_sequence()
        .unwrap()
        .iter()
        .find(|e| e["name"] == "OSTEOAI_CACHE")
        .map(|e| e["value"].as_str().unwrap().to_string())
        .expect("OSTEOAI_CACHE");
    assert!(under(&cache, false), "the cache is on a writable volume");
    let merge = yaml("merge-job.yaml");
    let mc = &merge["spec"]["template"]["spec"]["containers"][0];
    assert_eq!(mounts(mc), ms, "the merge sees the same volumes");

    // Run the pods here: volumes mapped to folders, one process per completion index.
    let tmp = tempfile::tempdir().unwrap();
    let map: Vec<(String, PathBuf)> = ms
        .iter()
        .enumerate()
        .map(|(i, (m, _))| (m.clone(), tmp.path().join(format!("vol{i}"))))
        .collect();
    for (_, dir) in &map {
        std::fs::create_dir_all(dir).unwrap();
    }
    let data = PathBuf::from(mapped(&argv[2], &map));
    let images = common::demo_copies(&data, 1);
    let env_of = |cmd: &mut Command| {
        cmd.env_clear()
            .env("PATH", "/usr/bin:/bin")
            .env("XDG_STATE_HOME", tmp.path().join("state"))
            .env("NO_COLOR", "1");
        for e in c["env"].as_sequence().unwrap() {
            cmd.env(
                e["name"].as_str().unwrap(),
                mapped(e["value"].as_str().unwrap(), &map),
            );
        }
    };
    for index in 0..completions {
        let mut cmd = Command::new(bin());
        env_of(&mut cmd);
        cmd.args(argv[1..].iter().map(|a| mapped(a, &map)))
            .env("JOB_COMPLETION_INDEX", index.to_string());
        let o = cmd.output().unwrap();
        let err = String::from_utf8_lossy(&o.stderr);
        assert!(o.status.success(), "index {index}: {err}");
        assert!(
            err.contains(&format!(
                "shard {index}/{completions} (from JOB_COMPLETION_INDEX)"
            )),
            "{err}"
        );
        assert!(
            !err.contains("log directory"),
            "a fresh state folder is made quietly: {err}"
        );
    }
    // The merge pod's shell command, with `osteoai` being this build.
    let mut margv = strings(&mc["command"]);
    margv.extend(strings(&mc["args"]));
    assert_eq!(margv[..2], ["sh", "-c"]);
    let line = mapped(&margv[2], &map).replacen("osteoai", bin(), 1);
    let mut cmd = Command::new("sh");
    cmd.args(["-c", &line]);
    env_of(&mut cmd);
    let o = cmd.output().unwrap();
    assert!(
        o.status.success(),
        "merge: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    let merged = line.split_whitespace().nth(2).map(PathBuf::from).unwrap();
    assert_eq!(rows(&merged), images);
}

#[test]
fn slurm_finetune_job_requeues_on_sigterm_and_resumes() {
    let home = tempfile::tempdir().unwrap();
    let home = home.path();
    fake_scheduler(home);
    let data = home.join("data");
    let mut seed = 4000;
    for (split, n) in [("train", 16), ("val", 6)] {
        for (class, fracture) in [("fracture", true), ("nofracture", false)] {
            let d = data.join(split).join(class);
            std::fs::create_dir_all(&d).unwrap();
            for i in 0..n {
                osteoai_core::fixtures::radiograph(seed, fracture, 80, 80)
                    .save(d.join(format!("{i}.png")))
                    .unwrap();
                seed += 1;
            }
        }
    }
    let out = home.join("models/tuned");
    let sbatch = root().join("deploy/slurm/finetune.sbatch");
    let job = || {
        let mut c = script(&sbatch, home);
        c.env("OSTEOAI_DATA_DIR", &data)
            .env("OSTEOAI_MODEL_OUT", &out)
            .env("SLURM_JOB_ID", "5151")
            .env("SLURM_CPUS_PER_TASK", "1")
            .env(
                "OSTEOAI_ARGS",
                "--epochs 6 --size 64 --batch 4 --accum 1 --frozen-blocks 0 --device cpu",
            );
        c
    };
    let child = job()
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // Signalled once the first epoch's checkpoint is there.
    let state = home.join("models/tuned.checkpoint/state.json");
    let start = Instant::now();
    while !state.is_file() {
        assert!(start.elapsed() < Duration::from_secs(300), "no checkpoint");
        std::thread::sleep(Duration::from_millis(20));
    }
    assert!(
        Command::new("kill")
            .args(["-TERM", &child.id().to_string()])
            .status()
            .unwrap()
            .success()
    );
    let o = child.wait_with_output().unwrap();
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(75), "{err}");
    assert!(err.contains("continues with --resume"), "{err}");
    let calls = std::fs::read_to_string(home.join("calls.log")).unwrap();
    assert!(calls.contains("scontrol requeue 5151"), "{calls}");
    // The requeued job resumes and finishes the bundle.
    let o = job().output().unwrap();
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(o.status.success(), "{err}");
    assert!(err.contains("resuming from the checkpoint"), "{err}");
    assert!(out.join("manifest.json").is_file());
    let m: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("manifest.json")).unwrap()).unwrap();
    assert_eq!(m["head"]["kind"], "linear");
}
