//! `osteoai audit DIR`: duplicates, augmented copies across splits, label conflicts, image
//! quality, class balance, and how much the leak inflates the model's metrics.

use std::path::{Path, PathBuf};

use clap::{Args, ValueEnum};
use osteoai_core::audit::report::Report;
use osteoai_core::audit::{AuditParams, audit_dir};
use osteoai_core::engine::Engine;
use osteoai_core::labels::ClassSpec;
use osteoai_core::model::Bundle;

use super::output::{csv_field, emit, opt, table};
use super::progress::with_stages;
use super::{ModelArgs, model_dir, select_device};

#[derive(Args, Debug)]
pub struct AuditArgs {
    /// The folder to audit (labels from class folders, splits from train/ val/ test/).
    pub dir: PathBuf,
    #[arg(long, value_enum, default_value_t = AuditFormat::Table)]
    pub format: AuditFormat,
    /// Also write report.json, findings.csv and summary.txt into this folder.
    #[arg(long, value_name = "DIR")]
    pub out: Option<PathBuf>,
    /// Exit with status 1 when the leaked share of any held-out split exceeds this (0..1).
    #[arg(long, value_name = "X")]
    pub max_leakage: Option<f64>,
    #[command(flatten)]
    pub model: ModelArgs,
    /// Skip the CNN: candidates from perceptual hashes only (fast, misses rotated copies).
    #[arg(long)]
    pub no_model: bool,
    /// Nearest neighbours per image in the embedding search.
    #[arg(long, default_value_t = AuditParams::default().neighbors)]
    pub neighbors: usize,
    /// Rows of each finding kind in the table (all of them in csv and json).
    #[arg(long, default_value_t = 10)]
    pub show: usize,
    /// Also fit a head to the folder's own labels (grouped 5-fold cross-validation) and report
    /// the likely label errors (kind `label_issue`); the bundle goes to DIR/.osteoai/models/fit.
    #[arg(long)]
    pub fit: bool,
    #[command(flatten)]
    pub patients: crate::options::PatientArgs,
    /// Write every candidate pair examined, with its verification, to this CSV (for tuning).
    #[arg(long, value_name = "FILE", hide = true)]
    pub dump_candidates: Option<PathBuf>,
    /// With a shard: only this shard's signatures and embeddings, into the cache (a cluster
    /// job's step; the audit then runs once without --shard, from the cache).
    #[command(flatten)]
    pub shard: super::sharding::ShardArgs,
}

#[derive(Copy, Clone, Debug, PartialEq, Eq, ValueEnum)]
pub enum AuditFormat {
    Table,
    Json,
    Csv,
}

/// Loads the model (unless told not to), scans `dir` and audits it.
pub fn run_audit(
    dir: &Path,
    model: &ModelArgs,
    no_model: bool,
    params: &AuditParams,
) -> Result<Report, String> {
    if !dir.is_dir() {
        return Err(format!("{} is not a folder", dir.display()));
    }
    let engine = if no_model {
        None
    } else {
        let device = select_device(model.device)?;
        Some(Engine::load(&model_dir(&model.model)?, device)?)
    };
    let classes = match &engine {
        Some(e) => e.manifest().classes.clone(),
        None => model_dir(&model.model)
            .and_then(|d| Bundle::read_manifest(&d).map_err(|e| e.to_string()))
            .map(|m| m.classes)
            .unwrap_or_else(|_| ClassSpec::fracture_default()),
    };
    audit_with(dir, engine.as_ref(), &classes, params)
}

/// The audit of `dir` with its stages' progress on stderr.
fn audit_with(
    dir: &Path,
    engine: Option<&Engine>,
    classes: &ClassSpec,
    params: &AuditParams,
) -> Result<Report, String> {
    with_stages(|never, progress| audit_dir(dir, engine, classes, params, never, progress))
}

pub fn run(a: AuditArgs) -> Result<i32, String> {
    if let Some(shard) = a.shard.resolve()? {
        return super::sharding::precompute_shard("audit", &a.dir, &a.model, a.no_model, shard);
    }
    let params = AuditParams {
        neighbors: a.neighbors.max(1),
        keep_examined: a.dump_candidates.is_some(),
        patients: a.patients.options(),
        // `--fit` needs the classifier's features: computed once, for both.
        classifier_features: a.fit,
        ..AuditParams::default()
    };
    if a.fit && a.no_model {
        return Err("--fit needs the model's features (drop --no-model)".into());
    }
    let (report, fitted) = if a.fit {
        let device = select_device(a.model.device)?;
        let engine = Engine::load(&model_dir(&a.model.model)?, device)?;
        let report = audit_with(&a.dir, Some(&engine), &engine.manifest().classes, &params)?;
        let command = std::env::args().collect::<Vec<_>>().join(" ");
        let run = super::fit::run_fit(
            &a.dir,
            &engine,
            &osteoai_core::fit::FitParams::default(),
            osteoai_core::fit::groups::Grouping::Audit,
            None,
            None,
            None,
            &command,
            Some(&report),
        )?;
        (report, Some(run))
    } else {
        (run_audit(&a.dir, &a.model, a.no_model, &params)?, None)
    };
    let issues = fitted.as_ref().map(|f| label_issues(&f.report));
    let text = match a.format {
        AuditFormat::Table => {
            let mut t = summary(&report, a.show);
            if let Some(f) = &fitted {
                t.push_str(&format!(
                    "\nlabel issues ({})\n",
                    label_issue_note(&f.report)
                ));
                t.push_str(&super::fit::summary(f, &a.dir, a.show));
            }
            t
        }
        AuditFormat::Json => {
            let mut v: serde_json::Value =
                serde_json::from_str(&json(&report)?).map_err(|e| e.to_string())?;
            if let Some(i) = &issues {
                v["label_issues"] = serde_json::to_value(i).map_err(|e| e.to_string())?;
            }
            serde_json::to_string_pretty(&v).map_err(|e| e.to_string())? + "\n"
        }
        AuditFormat::Csv => {
            let mut t = csv(&report);
            for i in issues.iter().flatten() {
                t.push_str(&format!(
                    "label_issue,{},,{:.4},{}\n",
                    csv_field(&i.path),
                    i.issue_score,
                    csv_field(&format!(
                        "labelled {}, suggested {}: {}",
                        i.label, i.suggested, i.reason
                    ))
                ));
            }
            t
        }
    };
    emit(None, &text)?;
    if let Some(path) = &a.dump_candidates {
        let mut t = String::from(
            "a,b,similarity,phash_distance,matches,inliers,spread,score,pearson,detail,overlap,mirrored,verified\n",
        );
        for e in &report.examined {
            let v = e.verification;
            t.push_str(&format!(
                "{},{},{},{},{},{},{:.4},{:.4},{:.4},{:.4},{:.4},{},{}\n",
                csv_field(&report.images[e.a].path),
                csv_field(&report.images[e.b].path),
                e.similarity.map(|s| format!("{s:.4}")).unwrap_or_default(),
                e.phash_distance,
                v.map_or(0, |v| v.matches),
                v.map_or(0, |v| v.inliers),
                v.map_or(0.0, |v| v.spread),
                v.map_or(-1.0, |v| v.score),
                v.map_or(-1.0, |v| v.pearson),
                v.map_or(-1.0, |v| v.detail),
                v.map_or(0.0, |v| v.overlap),
                v.is_some_and(|v| v.mirrored),
                v.is_some_and(|v| v.verified)
            ));
        }
        emit(Some(path), &t)?;
    }
    if let Some(out) = &a.out {
        std::fs::create_dir_all(out)
            .map_err(|e| format!("cannot create {}: {e}", out.display()))?;
        emit(Some(&out.join("report.json")), &json(&report)?)?;
        emit(Some(&out.join("findings.csv")), &csv(&report))?;
        emit(
            Some(&out.join("summary.txt")),
            &summary(&report, usize::MAX),
        )?;
        eprintln!(
            "osteoai: wrote report.json, findings.csv and summary.txt to {}",
            out.display()
        );
    }
    let worst = report.max_leak_share();
    eprintln!(
        "osteoai: audited {} images in {:.1} s. Not for clinical use.",
        report.images.len(),
        report.timing.get("total").copied().unwrap_or(0.0)
    );
    if let Some(max) = a.max_leakage
        && worst > max
    {
        eprintln!(
            "osteoai: leakage {:.1}% exceeds --max-leakage {:.1}%",
            worst * 100.0,
            max * 100.0
        );
        return Ok(1);
    }
    Ok(0)
}

/// One likely label error (from `audit --fit`).
#[derive(serde::Serialize)]
pub struct LabelIssue {
    pub path: String,
    pub label: String,
    pub suggested: String,
    pub issue_score: f64,
    pub reason: String,
}

fn label_issues(f: &osteoai_core::fit::FitReport) -> Vec<LabelIssue> {
    f.ranked_issues()
        .into_iter()
        .map(|i| {
            let im = &f.images[i];
            LabelIssue {
                path: im.path.display().to_string(),
                label: f.classes[im.label].clone(),
                suggested: f.classes[im.verdict.suggested].clone(),
                issue_score: im.verdict.issue_score,
                reason: im.verdict.reason.clone(),
            }
        })
        .collect()
}

fn label_issue_note(f: &osteoai_core::fit::FitReport) -> String {
    format!(
        "{} flagged; out-of-fold ROC AUC {}",
        f.ranked_issues().len(),
        opt(f.oof.roc_auc)
    )
}

fn json(r: &Report) -> Result<String, String> {
    let mut v = serde_json::to_value(r).map_err(|e| e.to_string())?;
    v["findings"] = serde_json::to_value(r.findings()).map_err(|e| e.to_string())?;
    Ok(serde_json::to_string_pretty(&v).map_err(|e| e.to_string())? + "\n")
}

/// One row per finding: `kind,path,other,score,detail`.
pub fn csv(r: &Report) -> String {
    let mut s = String::from("kind,path,other,score,detail\n");
    for f in r.findings() {
        s.push_str(&format!(
            "{},{},{},{},{}\n",
            f.kind,
            csv_field(&f.path),
            csv_field(&f.other),
            f.score.map(|x| format!("{x:.4}")).unwrap_or_default(),
            csv_field(&f.detail)
        ));
    }
    s
}

fn pct(a: usize, b: usize) -> String {
    if b == 0 {
        "-".into()
    } else {
        format!("{:.1}%", 100.0 * a as f64 / b as f64)
    }
}

/// The table a person reads first: the summary, then the findings of each kind.
pub fn summary(r: &Report, show: usize) -> String {
    use osteoai_core::audit::report::PairKind;
    let mut s = String::new();
    let readable = r.images.len() - r.unreadable.len();
    s.push_str(&format!(
        "audit of {} — {} images, {} readable, {} unreadable{}\n\n",
        r.root,
        r.images.len(),
        readable,
        r.unreadable.len(),
        r.model
            .as_ref()
            .map(|m| format!(", embeddings and scores from {m}"))
            .unwrap_or_else(|| ", no model".into())
    ));
    // Class balance.
    let labels: std::collections::BTreeSet<&String> =
        r.balance.values().flat_map(|m| m.keys()).collect();
    let mut header: Vec<&str> = vec!["split"];
    header.extend(labels.iter().map(|l| l.as_str()));
    header.push("total");
    let order = ["train", "val", "test", "none", "all"];
    let rows: Vec<Vec<String>> = order
        .iter()
        .filter_map(|sp| r.balance.get(*sp).map(|m| (sp, m)))
        .map(|(sp, m)| {
            let mut row = vec![sp.to_string()];
            row.extend(
                labels
                    .iter()
                    .map(|l| m.get(*l).copied().unwrap_or(0).to_string()),
            );
            row.push(m.values().sum::<usize>().to_string());
            row
        })
        .collect();
    s.push_str("class balance\n");
    s.push_str(&indent(&table(&header, &rows)));
    let count = |k: PairKind| r.pairs.iter().filter(|p| p.kind == k && p.counts()).count();
    let possible = r
        .pairs
        .iter()
        .filter(|p| p.kind == PairKind::Possible && !p.counts())
        .count();
    s.push_str(&format!(
        "\nexact duplicates: {} pairs with identical bytes, {} with identical pixels\n",
        count(PairKind::ExactBytes),
        count(PairKind::ExactPixels)
    ));
    s.push_str(&format!(
        "augmented copies (verified): {} pairs; {} groups of copies (largest {}); {} more pairs narrowly unverified (kind possible, for review)\n",
        count(PairKind::Near),
        r.groups.len(),
        r.groups.first().map_or(0, |g| g.len()),
        possible
    ));
    s.push_str("\ncross-split leakage (held-out images with a copy in an earlier split)\n");
    let rows = leakage_rows(&r.leakage);
    if rows.is_empty() {
        s.push_str("  no train/val/test splits here\n");
    } else {
        s.push_str(&indent(&table(&["splits", "leaked", "of", "share"], &rows)));
    }
    if !r.patient_leakage.is_empty() {
        s.push_str("\nsame patient across splits (held-out images of a patient with other films in an earlier split; who is never shown)\n");
        let rows = leakage_rows(&r.patient_leakage);
        s.push_str(&indent(&table(
            &["splits", "same patient", "of", "share"],
            &rows,
        )));
    }
    s.push_str(&format!(
        "\nlabel conflicts (copies with different labels): {}\n",
        r.conflicts.len()
    ));
    let mut q = std::collections::BTreeMap::new();
    for f in &r.quality {
        *q.entry(f.kind.name()).or_insert(0) += 1;
    }
    s.push_str(&format!(
        "image quality flags: {}\n",
        if q.is_empty() {
            "none".to_string()
        } else {
            q.iter()
                .map(|(k, n)| format!("{k} {n}"))
                .collect::<Vec<_>>()
                .join(", ")
        }
    ));
    if let Some(inf) = &r.inflation {
        s.push_str("\nmodel metrics with and without the leaked images (copies in train)\n");
        let rows: Vec<Vec<String>> = inf
            .iter()
            .map(|i| {
                vec![
                    i.split.to_string(),
                    i.all.n.to_string(),
                    opt(i.all.roc_auc),
                    opt(i.all.accuracy),
                    i.without_leaked.n.to_string(),
                    opt(i.without_leaked.roc_auc),
                    opt(i.without_leaked.accuracy),
                    i.leaked_only.n.to_string(),
                    opt(i.leaked_only.roc_auc),
                    opt(i.leaked_only.accuracy),
                ]
            })
            .collect();
        s.push_str(&indent(&table(
            &[
                "split",
                "n",
                "auc",
                "acc",
                "n_clean",
                "auc_clean",
                "acc_clean",
                "n_leaked",
                "auc_leaked",
                "acc_leaked",
            ],
            &rows,
        )));
    }
    let findings = r.findings();
    let mut kinds: Vec<&str> = Vec::new();
    for f in &findings {
        if !kinds.contains(&f.kind) {
            kinds.push(f.kind);
        }
    }
    for kind in kinds {
        let of: Vec<_> = findings.iter().filter(|f| f.kind == kind).collect();
        s.push_str(&format!(
            "\n{kind}: {}{}\n",
            of.len(),
            if of.len() > show {
                format!(" (first {show}; --format csv for all)")
            } else {
                String::new()
            }
        ));
        let rows: Vec<Vec<String>> = of
            .iter()
            .take(show)
            .map(|f| {
                vec![
                    f.path.clone(),
                    if f.other.is_empty() {
                        "-".into()
                    } else {
                        f.other.clone()
                    },
                    f.score
                        .map(|x| format!("{x:.3}"))
                        .unwrap_or_else(|| "-".into()),
                    f.detail.clone(),
                ]
            })
            .collect();
        s.push_str(&indent(&table(
            &["path", "other", "score", "detail"],
            &rows,
        )));
    }
    for n in &r.notes {
        s.push_str(&format!("\nnote: {n}\n"));
    }
    let t = |k: &str| r.timing.get(k).copied().unwrap_or(0.0);
    s.push_str(&format!(
        "\ntime: {:.1} s (images {:.1}, embeddings {:.1}, candidates {:.1}, verification {:.1}); {} candidate pairs examined\n",
        t("total"),
        t("signatures"),
        t("embeddings"),
        t("candidates"),
        t("verification"),
        r.candidates.get("examined").copied().unwrap_or(0)
    ));
    s
}

fn indent(t: &str) -> String {
    t.lines().map(|l| format!("  {l}\n")).collect()
}

/// One table row per split pair: splits, leaked, of, share.
fn leakage_rows(leakage: &[osteoai_core::audit::report::Leakage]) -> Vec<Vec<String>> {
    leakage
        .iter()
        .map(|l| {
            vec![
                format!("{} -> {}", l.split, l.into),
                l.leaked.to_string(),
                l.of.to_string(),
                pct(l.leaked, l.of),
            ]
        })
        .collect()
}
