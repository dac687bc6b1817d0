//! `osteoai split DIR --out DIR2`: a leak-free, stratified re-split built from the audit's
//! groups of copies, or (`--from`) the split a recorded `split-manifest.csv` names. DIR is never
//! modified.

use std::path::{Path, PathBuf};

use clap::Args;
use osteoai_core::audit::AuditParams;
use osteoai_core::audit::recorded_split::rebuild;
use osteoai_core::audit::resplit::{Plan, plan, write};
use osteoai_core::labels::{ClassSpec, Split};
use osteoai_core::scan::scan;

use super::ModelArgs;
use super::audit::run_audit;
use super::output::table;

#[derive(Args, Debug)]
pub struct SplitArgs {
    /// The folder to re-split (read only).
    pub dir: PathBuf,
    /// The new folder: DIR2/{train,val,test}/<label>/ (must not exist, or be empty).
    #[arg(long, value_name = "DIR2")]
    pub out: PathBuf,
    /// Shares of train, val and test.
    #[arg(long, default_value = "0.7,0.15,0.15", value_parser = parse_ratios)]
    pub ratios: [f64; 3],
    #[arg(long, default_value_t = 42)]
    pub seed: u64,
    /// Print the plan and the leakage before and after; write nothing.
    #[arg(long)]
    pub dry_run: bool,
    /// Copy the files instead of hard-linking them.
    #[arg(long)]
    pub copy: bool,
    #[command(flatten)]
    pub model: ModelArgs,
    #[command(flatten)]
    pub patients: crate::options::PatientArgs,
    /// Audit without the CNN (perceptual hashes only: rotated copies are missed).
    #[arg(long)]
    pub no_model: bool,
    /// Rebuild the split a `split-manifest.csv` records (no audit): the same files in the same
    /// splits on another machine, a moved folder or a later osteoai version.
    #[arg(long, value_name = "MANIFEST", conflicts_with_all = ["ratios", "seed", "no_model"])]
    pub from: Option<PathBuf>,
}

fn parse_ratios(s: &str) -> Result<[f64; 3], String> {
    let v: Vec<f64> = s
        .split(',')
        .map(|x| x.trim().parse::<f64>().map_err(|e| format!("{x:?}: {e}")))
        .collect::<Result<_, _>>()?;
    match v.as_slice() {
        [a, b, c] if v.iter().all(|x| *x >= 0.0) && a + b + c > 0.0 => Ok([*a, *b, *c]),
        _ => Err("three non-negative shares, e.g. 0.7,0.15,0.15".into()),
    }
}

/// The plan `--from` names: the recorded split of the folder's files.
fn recorded(dir: &Path, manifest: &Path) -> Result<Plan, String> {
    let text =
        std::fs::read_to_string(manifest).map_err(|e| format!("{}: {e}", manifest.display()))?;
    if !dir.is_dir() {
        return Err(format!("{} is not a folder", dir.display()));
    }
    let scan = scan(dir, &ClassSpec::fracture_default());
    let files: Vec<PathBuf> = scan.entries.into_iter().map(|e| e.path).collect();
    let r = rebuild(&text, dir, &files)?;
    println!(
        "plan for {} -> from {}: {} files placed as recorded, {} recorded files not found, {} files not in the record",
        dir.display(),
        manifest.display(),
        r.plan.placements.len(),
        r.missing.len(),
        r.plan.skipped.len()
    );
    for m in r.missing.iter().take(20) {
        println!("not found: {m}");
    }
    if r.plan.placements.is_empty() {
        return Err(format!(
            "no file of {} is named in {}",
            dir.display(),
            manifest.display()
        ));
    }
    Ok(r.plan)
}

pub fn run(a: SplitArgs) -> Result<i32, String> {
    let (p, before) = match &a.from {
        Some(m) => (recorded(&a.dir, m)?, None),
        None => {
            let params = AuditParams {
                patients: a.patients.options(),
                ..AuditParams::default()
            };
            let report = run_audit(&a.dir, &a.model, a.no_model, &params)?;
            let p = plan(&report, &a.dir, a.ratios, a.seed)?;
            println!(
                "plan for {} -> {} (ratios {:?}, seed {}): {} files in {} groups of copies kept whole, {} left out",
                a.dir.display(),
                a.out.display(),
                a.ratios,
                a.seed,
                p.placements.len(),
                report.groups.len(),
                p.skipped.len()
            );
            let before = report
                .leaks
                .iter()
                .map(|l| l.image)
                .collect::<std::collections::BTreeSet<_>>()
                .len();
            (p, Some(before))
        }
    };
    let counts = p.counts();
    let labels: std::collections::BTreeSet<String> =
        counts.values().flat_map(|m| m.keys().cloned()).collect();
    let mut header: Vec<&str> = vec!["split"];
    header.extend(labels.iter().map(String::as_str));
    header.push("total");
    let rows: Vec<Vec<String>> = [Split::Train, Split::Val, Split::Test]
        .iter()
        .map(|s| {
            let m = counts.get(s).cloned().unwrap_or_default();
            let mut r = vec![s.to_string()];
            r.extend(
                labels
                    .iter()
                    .map(|l| m.get(l).copied().unwrap_or(0).to_string()),
            );
            r.push(m.values().sum::<usize>().to_string());
            r
        })
        .collect();
    print!("{}", table(&header, &rows));
    match before {
        Some(before) => println!(
            "held-out images with a copy in an earlier split: {} before, {} after",
            before,
            p.leaked()
        ),
        None => println!(
            "held-out images whose recorded group has a member in an earlier split: {}",
            p.leaked()
        ),
    }
    for (path, why) in p.skipped.iter().take(20) {
        println!("left out: {} ({why})", path.display());
    }
    if a.dry_run {
        println!("dry run: nothing written");
        return Ok(0);
    }
    let w = write(&p, &a.out, a.copy)?;
    println!(
        "wrote {} ({} hard links, {} copies) and {}",
        a.out.display(),
        w.linked,
        w.copied,
        a.out.join("split-manifest.csv").display()
    );
    Ok(0)
}
