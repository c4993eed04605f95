//! All four experiments in one run, sharing the pretrained sources and the target runs, and a
//! `README.md` that reports the headline numbers beside the study's.

use super::ablation::{self, AblationRank};
use super::coverage::{self, CoverageSummary};
use super::figure2::{self, Figure2Summary};
use super::figure3::{self, Figure3Summary, SweepPlan};
use super::pretrain::pretrain_all;
use super::runs::{sources_needed, target_runs, Start, TargetStudy};
use super::{Source, StudyOptions};
use serde::Serialize;
use std::fmt::Write as _;
use std::path::Path;
use std::time::Instant;
use whichgan::io::create_writable_dir;
use whichgan::{Error, Result};

/// Wall time of one part of the run.
#[derive(Debug, Clone, Serialize)]
pub struct Timing {
    pub part: &'static str,
    pub seconds: f64,
}

#[derive(Debug, Clone, Serialize)]
pub struct ReproduceSummary {
    pub preset: &'static str,
    pub threads: usize,
    /// The CPU's vector instructions: other ones round differently and move the numbers.
    pub cpu: whichgan::runtime::CpuFeatures,
    pub timings: Vec<Timing>,
    pub figure2: Figure2Summary,
    pub figure3: Figure3Summary,
    pub ablation: Vec<AblationRank>,
    pub coverage: CoverageSummary,
}

/// Runs Figure 2, Figure 3, the ablation and the coverage curves and writes their CSV files,
/// figures and `README.md` into `out`. With `sweep_from`, the Figure 3 sweep's rows come from
/// the shards in that folder (`figure3 --shard`, of this very sweep) instead of being run.
pub fn reproduce(
    out: &Path,
    opts: &StudyOptions,
    sweep_from: Option<&Path>,
) -> Result<ReproduceSummary> {
    create_writable_dir(out)?;
    let preset = opts.preset;
    let seeds = opts.target_seeds();
    let plan = SweepPlan::new(opts);
    let sharded = match sweep_from {
        Some(dir) => {
            let (shard_plan, rows) = figure3::merge(&[dir.to_owned()])?;
            if shard_plan != plan {
                return Err(Error::in_file(
                    dir,
                    "holds the shards of another Figure 3 sweep (preset, seeds or protocol differ)",
                ));
            }
            Some(rows)
        }
        None => None,
    };
    let starts = ablation::starts();
    // A sweep taken from its shards needs no sweep sources here.
    let sweep_pairs: Vec<(Source, u64)> = match sharded {
        Some(_) => Vec::new(),
        None => plan.seeds.iter().map(|&s| (Source::One, s)).collect(),
    };
    let mut pairs = sources_needed(&starts, &seeds);
    pairs.extend(&sweep_pairs);
    pairs.sort();
    pairs.dedup();

    let mut timings = Vec::new();
    let mut clock = Instant::now();
    let mut lap = |part: &'static str| {
        timings.push(Timing {
            part,
            seconds: clock.elapsed().as_secs_f64(),
        });
        clock = Instant::now();
    };
    let bar = opts.bar("pretraining sources", 0);
    let sources = pretrain_all(&pairs, &sweep_pairs, opts.protocol, preset, &bar)?;
    lap("pretraining (sources × seeds)");
    let rows = match sharded {
        Some(rows) => rows,
        None => figure3::fine_tunes(&plan, opts, &sources, &plan.tasks_of(None))?,
    };
    lap("Figure 3 checkpoint fine-tunes");
    let bar = opts.bar("target runs", 0);
    let runs = target_runs(&starts, &seeds, &sources, preset, &bar)?;
    let study = TargetStudy {
        seeds,
        sources,
        runs,
    };
    lap("target runs (Figure 2, ablation, coverage)");
    let figure2 = figure2::write(out, &study)?;
    let ablation = ablation::write(out, &study)?;
    let coverage = coverage::write(out, &study, preset.coverage_samples)?;
    let figure3 = figure3::write_results(out, &plan, &rows, opts.recall_arithmetic)?;
    lap("CSV files and figures");
    let summary = ReproduceSummary {
        preset: preset.name,
        threads: rayon::current_num_threads(),
        cpu: whichgan::runtime::CpuFeatures::detect(),
        timings,
        figure2,
        figure3,
        ablation,
        coverage,
    };
    let against_reference = super::reference::section(out)?.unwrap_or_default();
    whichgan::io::write_atomic(
        &out.join("README.md"),
        readme(&summary, opts, &against_reference).as_bytes(),
    )?;
    let json = serde_json::to_string_pretty(&summary).expect("summary serialises");
    whichgan::io::write_atomic(&out.join("summary.json"), json.as_bytes())?;
    Ok(summary)
}

/// What the four starts of one source say about the roles of G and D.
fn ablation_reading(
    full: &AblationRank,
    g_only: &AblationRank,
    d_only: &AblationRank,
    scratch: &AblationRank,
) -> String {
    let mut out = Vec::new();
    if full.rank == 1 {
        out.push("Both halves together are best.".to_string());
    }
    // Gain over scratch (positive: the half helps).
    let gain_g = scratch.median_final_w1 - g_only.median_final_w1;
    let gain_d = scratch.median_final_w1 - d_only.median_final_w1;
    out.push(match (gain_g > 0.0, gain_d > 0.0) {
        (true, true) if gain_g >= gain_d => format!(
            "Each half alone beats scratch, the pretrained G by more ({gain_g:.2} vs {gain_d:.2} \
             W1)."
        ),
        (true, true) => format!(
            "Each half alone beats scratch, the pretrained D by more ({gain_d:.2} vs {gain_g:.2} \
             W1)."
        ),
        (true, false) => format!(
            "The pretrained G alone beats scratch by {gain_g:.2} W1; the pretrained D alone does \
             not ({:+.2}).",
            -gain_d
        ),
        (false, true) => format!(
            "The pretrained D alone beats scratch by {gain_d:.2} W1; the pretrained G alone does \
             not ({:+.2}).",
            -gain_g
        ),
        (false, false) => format!(
            "Neither half alone beats scratch (W1 {:+.2} with the pretrained G, {:+.2} with the \
             pretrained D); the starts with this source's G end with {:.0} modes covered.",
            -gain_g, -gain_d, full.median_final_modes
        ),
    });
    out.join(" ")
}

fn holds(ok: bool) -> &'static str {
    if ok {
        "holds"
    } else {
        "does not hold"
    }
}

/// The report: headline numbers beside the study's, timings, figures.
fn readme(s: &ReproduceSummary, opts: &StudyOptions, against_reference: &str) -> String {
    let p = opts.preset;
    let mut md = String::new();
    let total: f64 = s.timings.iter().map(|t| t.seconds).sum();
    let _ = writeln!(
        md,
        "# The study's synthetic experiments, regenerated\n\n\
         Written by `whichgan toy reproduce --preset {} --seed {}{}` ({} threads, {:.0} s in \
         all, on {}). The numbers below come from the CSV files beside this file (timings \
         aside); the same command gives the same numbers, whatever the number of threads, on a \
         CPU with the same vector instructions. The matrix kernels choose their code by them at \
         run time and round differently, which training amplifies: the main README says how \
         far another CPU moves these numbers.\n",
        p.name,
        opts.seed,
        opts.seeds
            .map_or(String::new(), |n| format!(" --seeds {n}")),
        s.threads,
        total,
        s.cpu
    );
    if p.name != "paper" {
        let _ = writeln!(
            md,
            "**Preset `{}`: shrunken budgets for a quick check — these numbers are not the \
             study's experiment.**\n",
            p.name
        );
    }
    let _ = writeln!(
        md,
        "Budgets: sources pretrained {} G steps (4 D steps each, batch 64, Adam 2e-4, β = (0.5, \
         0.999)); Figure 3 sweeps {} checkpoints (every {} G steps), each fine-tuned {} G steps \
         with W1 every {} (2048 samples, exact) and probed with {} samples; target runs of \
         Figure 2, the ablation and the coverage curves train {} G steps, evaluated every {} \
         with {} samples for coverage, precision and recall; {} seed(s) for the target runs, \
         {} for the sweep.\n",
        p.pretrain_steps,
        s.figure3.checkpoints,
        p.checkpoint_every,
        p.sweep_steps,
        p.sweep_eval_every,
        p.sweep_samples,
        p.target_steps,
        p.target_eval_every,
        p.coverage_samples,
        s.figure2.seeds.len(),
        s.figure3.seeds.len()
    );

    // Headline table.
    let corr = |metric: &str, convention: &str| {
        s.figure3
            .correlations
            .iter()
            .find(|c| {
                c.seed == s.figure3.seeds[0] && c.metric == metric && c.convention == convention
            })
            .expect("every measure is correlated for every seed")
    };
    let spread = |metric: &str, convention: &str| {
        s.figure3
            .spread
            .iter()
            .find(|c| c.metric == metric && c.convention == convention)
            .map(|c| {
                if s.figure3.seeds.len() > 1 {
                    format!(" (seeds: {:.3} … {:.3})", c.min_r, c.max_r)
                } else {
                    String::new()
                }
            })
            .unwrap_or_default()
    };
    let arithmetic = s.figure3.recall_arithmetic.name();
    let recall = corr("recall", arithmetic);
    let notebook = corr("grad_sim", "notebook");
    let descent = corr("grad_sim", "descent");
    let precision = corr("precision", arithmetic);
    let _ = writeln!(md, "## Headline numbers\n");
    let _ = writeln!(md, "| claim | study (public notebook) | here | verdict |");
    let _ = writeln!(md, "|---|---|---|---|");
    let _ = writeln!(
        md,
        "| Figure 3: Pearson r(recall, min W1) ≤ −0.7, p < 1e-10 | r = −0.843, p = 2.0e-28 | r = {:.3}, p = {:.1e}{} | {} |",
        recall.pearson_r,
        recall.pearson_p,
        spread("recall", arithmetic),
        holds(recall.pearson_r <= -0.7 && recall.pearson_p < 1e-10)
    );
    let _ = writeln!(
        md,
        "| Figure 3: r(∇D similarity, min W1), notebook sign (+∇ₓL_G) | r = −0.728, p = 6.6e-18 | r = {:.3}, p = {:.1e}{} | — |",
        notebook.pearson_r,
        notebook.pearson_p,
        spread("grad_sim", "notebook")
    );
    let _ = writeln!(
        md,
        "| Figure 3: r(∇D similarity, min W1), descent sign (∇ₓ log D) | (not reported) | r = {:.3}, p = {:.1e}{} | — |",
        descent.pearson_r,
        descent.pearson_p,
        spread("grad_sim", "descent")
    );
    let _ = writeln!(
        md,
        "| Figure 3: r(precision, min W1) (recall predicts better) | (not reported) | r = {:.3}, p = {:.1e}{} | {} |",
        precision.pearson_r,
        precision.pearson_p,
        spread("precision", arithmetic),
        holds(recall.pearson_r < 0.0 && recall.pearson_r < precision.pearson_r)
    );
    let m = &s.figure2.medians;
    let _ = writeln!(
        md,
        "| Figure 2: W1(Source-I start) < W1(scratch) < W1(Source-II start), median final W1 of {} seeds | Source-I better than scratch, Source-II worse | {:.2} / {:.2} / {:.2} (ordering in {} of {} seeds) | {} |",
        s.figure2.seeds.len(),
        m[0].median_final_w1,
        m[2].median_final_w1,
        m[1].median_final_w1,
        s.figure2.seeds_with_ordering,
        s.figure2.seeds.len(),
        holds(s.figure2.study_ordering_holds)
    );
    for source in Source::ALL {
        let mut ranks: Vec<&AblationRank> = s
            .ablation
            .iter()
            .filter(|r| r.source == source.key())
            .collect();
        ranks.sort_by_key(|r| r.rank);
        let order: Vec<String> = ranks
            .iter()
            .map(|r| format!("{} ({:.2})", r.start, r.median_final_w1))
            .collect();
        let _ = writeln!(
            md,
            "| Ablation, {}: ranking of the four starts by median final W1 | both halves matter | {} | — |",
            source.name(),
            order.join(" < ")
        );
    }
    for f in &s.coverage.finals {
        let _ = writeln!(
            md,
            "| Coverage at the last step, {} | ImageNet start covers most (Flowers) | {:.1} of 10 modes, recall {:.3}, precision {:.3} | — |",
            f.start, f.median_modes_covered, f.median_recall, f.median_precision
        );
    }

    md.push_str(against_reference);

    let t = &s.figure3.trend;
    let _ = writeln!(
        md,
        "\n## The two signs of ∇D similarity\n\n\
         The study scores a checkpoint's gradient field by the mean cosine between the direction \
         from a generated sample x to its nearest target centre c(x) and a gradient at x. The \
         public notebook back-propagates the generator loss L_G = −log D(G(z)) to the samples \
         and uses that gradient as it is: **+∇ₓL_G**, the direction in which the generator loss \
         *grows* (D's score of x falls). A generator update moves x the other way, along \
         −∇ₓL_G = ∇ₓ log D: the **descent** sign, the arrows of `whichgan toy field`. The two \
         similarities are exact negatives of each other, and so are their correlations with the \
         fine-tuned W1: r = {:.3} in the notebook's sign, r = {:.3} in the descent sign.\n",
        notebook.pearson_r, descent.pearson_r
    );
    if notebook.pearson_p < 0.01 {
        let (more, worse) = if descent.pearson_r > 0.0 {
            ("more", "higher")
        } else {
            ("less", "lower")
        };
        let _ = writeln!(
            md,
            "Read in the descent sign: the {more} a checkpoint's update direction points to the \
             nearest target centre, the {worse} the W1 its fine-tune reaches."
        );
    }
    let _ = writeln!(
        md,
        "Along the Source-I run, the first checkpoint (the random initialisation) has descent \
         similarity {:.2} and recall {:.2}, the last {:.2} and {:.2}; over all checkpoints \
         r(recall, similarity in the notebook's sign) = {:.2}.",
        t.first.grad_sim_descent,
        t.first.recall,
        t.last.grad_sim_descent,
        t.last.recall,
        t.r_recall_grad_sim_notebook
    );
    if t.first.grad_sim_descent > 0.3 && t.last.grad_sim_descent.abs() < 0.2 {
        let _ = writeln!(
            md,
            "An untrained D pulls samples towards the ring on which the target modes lie while \
             G has not reached it; a D near equilibrium has a field close to orthogonal to the \
             way to the nearest mode at G's samples. So along one run the similarity mostly \
             tracks how far pretraining has come, like recall does, rather than how useful the \
             field is; the role of D is tested directly by the ablation below."
        );
    }
    md.push('\n');

    let _ = writeln!(md, "## The G/D ablation in words\n");
    for source in Source::ALL {
        let rank = |key: String| {
            s.ablation
                .iter()
                .find(|r| r.source == source.key() && r.start == key)
                .expect("every ablation start is ranked")
        };
        let [full, g_only, d_only, scratch] = Start::ablation(source).map(|st| rank(st.key()));
        let _ = writeln!(
            md,
            "- {}: both pretrained {:.2} (modes {:.0}), pretrained G + random D {:.2} ({:.0}), \
             random G + pretrained D {:.2} ({:.0}), scratch {:.2} ({:.0}) — median final W1 \
             (modes covered). {}",
            source.name(),
            full.median_final_w1,
            full.median_final_modes,
            g_only.median_final_w1,
            g_only.median_final_modes,
            d_only.median_final_w1,
            d_only.median_final_modes,
            scratch.median_final_w1,
            scratch.median_final_modes,
            ablation_reading(full, g_only, d_only, scratch)
        );
    }
    md.push('\n');

    let _ = writeln!(md, "## Wall time\n\n| part | seconds |\n|---|---|");
    for t in &s.timings {
        let _ = writeln!(md, "| {} | {:.1} |", t.part, t.seconds);
    }
    let _ = writeln!(md, "| **total** | **{total:.1}** |");

    let _ = writeln!(
        md,
        "\n## Figures\n\n\
         ### Figure 2 — which source helps\n\n![Figure 2](figure2.png)\n\n\
         CSV: `figure2.csv` (final and minimum W1, modes covered, recall, precision per seed and \
         start).\n\n\
         ### Figure 3 — what predicts a good checkpoint\n\n![Figure 3](figure3.png)\n\n\
         CSV: `figure3.csv` (one row per checkpoint: recall, precision, ∇D similarity in both \
         signs, W1 of the fine-tune at each evaluation, minimum W1), \
         `figure3-correlations.csv` (Pearson r, p, 95 % interval, Spearman ρ, p).\n\n\
         ### G/D ablation — both halves matter\n\n![Ablation](ablation.png)\n\n\
         CSV: `ablation.csv` (every evaluation), `ablation-ranking.csv`.\n\n\
         ### Mode coverage over fine-tuning\n\n![Coverage](coverage.png)\n\n\
         CSV: `coverage.csv` (modes covered — ≥ 10 of the samples within 3σ —, share of samples \
         within 3σ, precision, recall and W1 at every evaluation)."
    );
    md
}
