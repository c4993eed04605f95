//! The report's README: what the study ran, and the study's claims checked one by one against
//! its results.

use super::*;
use crate::study::spec;

fn yes_no(b: bool) -> &'static str {
    if b {
        "**holds**"
    } else {
        "**does not hold**"
    }
}

fn fmt(v: Option<f64>) -> String {
    v.map(|v| format!("{v:.3}")).unwrap_or_else(|| "–".into())
}

/// The README: the claims of the study, each checked against these results.
/// What the study ran: its sources, targets, settings and compute.
fn setup(r: &Results) -> String {
    let study = &r.study;
    let data = |d: &spec::Data| match d {
        spec::Data::Made { name, spec } => format!(
            "`{name}`: {} synthetic images of {} classes ({}…{}), {}×{}",
            spec.images,
            spec.classes,
            spec.first_class,
            spec.first_class + spec.classes - 1,
            spec.resolution,
            spec.resolution
        ),
        spec::Data::File(path) => format!("`{}`", path.display()),
    };
    let mut s = String::from("## Setup\n\n");
    for source in &study.sources {
        let how = match &source.start {
            spec::SourceStart::Checkpoint(p) => format!("checkpoint `{}`", p.display()),
            spec::SourceStart::Pretrain {
                data: d, settings, ..
            } => format!(
                "pretrained from scratch for {} kimg on {}",
                settings
                    .kimg
                    .map_or("the preset's".into(), |k| k.to_string()),
                data(d)
            ),
        };
        let _ = writeln!(s, "- source **{}**: {how}", source.name);
    }
    if study.scratch {
        let _ = writeln!(s, "- **scratch**: random networks");
    }
    for t in &study.targets {
        let settings = match serde_json::to_value(&t.settings).expect("settings serialise") {
            serde_json::Value::Object(fields) => fields
                .into_iter()
                .filter(|(_, v)| !v.is_null())
                .map(|(k, v)| format!("{k} = {v}"))
                .collect::<Vec<_>>()
                .join(", "),
            _ => String::new(),
        };
        let _ = writeln!(
            s,
            "- target **{}**: {}{}; fine-tunes with `{settings}`",
            t.name,
            data(&t.data),
            if t.classes { ", classes counted" } else { "" }
        );
    }
    let m = &study.metrics;
    let _ = writeln!(
        s,
        "- scores: FID and KID on `{}` features{}, precision and recall (k = {}) on {}; {} \
         generated images per snapshot; classes covered: {} images, a class counts with ≥ {}; \
         selection: setting 1 {}, setting 2 {}",
        m.features,
        m.inception
            .as_ref()
            .map(|w| format!(" (`{}`)", w.display()))
            .unwrap_or_default(),
        m.k,
        if m.vgg16.is_some() {
            "VGG16 features"
        } else {
            "the same features"
        },
        m.n,
        m.classes_n,
        m.classes_min,
        if study.select_real { "on" } else { "off" },
        match study.select_generated {
            0 => "off".to_owned(),
            n => format!("{n} samples per source"),
        }
    );
    if !r.seconds.is_empty() {
        let total = |prefix: &str| -> f64 {
            r.seconds
                .iter()
                .filter(|(job, _)| job.id().starts_with(prefix))
                .map(|(_, t)| t)
                .sum()
        };
        let _ = writeln!(
            s,
            "\nCompute (job time as the processes that ran them measured it): pretraining {:.1} \
             min, fine-tunes with their evaluation {:.1} min, selection scores {:.1} min, \
             probes and datasets {:.1} min; {:.1} min in all.",
            total("pretrain") / 60.0,
            total("finetune") / 60.0,
            total("select") / 60.0,
            (total("probe") + total("dataset")) / 60.0,
            r.seconds.iter().map(|(_, t)| t).sum::<f64>() / 60.0
        );
    }
    s.push('\n');
    s
}

pub(super) fn readme(r: &Results, conv: &[ConvergenceRow], sel: &[SelectionRow]) -> String {
    let mut s = String::from("# Image-scale study: results\n\nWritten by `whichgan study report` from the study's folder; every number below is in the CSV files beside this one.\n\n");
    s.push_str(&setup(r));
    let sources: Vec<&str> = r.study.sources.iter().map(|s| s.name.as_str()).collect();
    let conv_of =
        |start: &str, target: &str| conv.iter().find(|c| c.start == start && c.target == target);
    // Claim 1 and 2: pretrained starts against scratch.
    if r.study.scratch {
        let mut beats = true;
        let mut faster = true;
        let mut table = String::from("| target | start | final FID | kimg to within 10 % | excess area |\n|---|---|---|---|---|\n");
        for t in &r.study.targets {
            let scratch = conv_of(SCRATCH, &t.name);
            for start in r.study.starts() {
                if let Some(c) = conv_of(start, &t.name) {
                    let _ = writeln!(
                        table,
                        "| {} | {start} | {:.3} | {} | {:.3} |",
                        t.name, c.final_fid, c.kimg_to_within, c.excess_area
                    );
                    if let (Some(sc), true) = (scratch, start != SCRATCH) {
                        beats &= c.final_fid < sc.final_fid;
                        faster &= c.excess_area < sc.excess_area;
                    }
                }
            }
        }
        let _ = write!(
            s,
            "## 1. Every pretrained start beats scratch on FID: {}\n\n## 2. Pretraining speeds up convergence (smaller excess area over the plateau than scratch): {}\n\n{table}\n",
            yes_no(beats),
            yes_no(faster)
        );
    }
    // Claim 3: recall moves more than precision with the source.
    let mut table = String::from(
        "| target | range of final recall | range of final precision |\n|---|---|---|\n",
    );
    let mut holds = true;
    for t in &r.study.targets {
        let spread = |f: &dyn Fn(&EvaluationRow) -> Option<f64>| {
            let v: Vec<f64> = sources
                .iter()
                .filter_map(|s| last(r, s, &t.name).and_then(f))
                .collect();
            let (lo, hi) = v
                .iter()
                .fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), &x| {
                    (lo.min(x), hi.max(x))
                });
            (hi - lo).max(0.0)
        };
        let (rec, prec) = (spread(&|row| row.recall), spread(&|row| row.precision));
        holds &= rec > prec;
        let _ = writeln!(table, "| {} | {rec:.3} | {prec:.3} |", t.name);
    }
    let _ = write!(
        s,
        "## 3. The choice of source moves recall more than precision: {}\n\n{table}\n",
        yes_no(holds)
    );
    // Claim 4: the broad source covers the most classes.
    let labelled: Vec<_> = r.study.targets.iter().filter(|t| t.classes).collect();
    if !labelled.is_empty() {
        let mut table =
            String::from("| target | start | classes covered (final) |\n|---|---|---|\n");
        let mut holds = r.study.broad_source.is_some();
        for t in &labelled {
            let covered = |s: &str| last(r, s, &t.name).and_then(|row| row.classes_covered);
            let most = r.study.starts().iter().filter_map(|s| covered(s)).max();
            if let Some(broad) = &r.study.broad_source {
                holds &= covered(broad).is_some() && covered(broad) == most;
            }
            for start in r.study.starts() {
                let _ = writeln!(
                    table,
                    "| {} | {start} | {} |",
                    t.name,
                    covered(start).map(|c| c.to_string()).unwrap_or_default()
                );
            }
        }
        let who = r
            .study
            .broad_source
            .as_deref()
            .unwrap_or("(no `report.broad_source` given)");
        let _ = write!(
            s,
            "## 4. The broadest source ({who}) covers the most target classes: {}\n\n{table}\n",
            yes_no(holds)
        );
    }
    // Claim 5: recall picks the best source most often.
    let fails = failures(sel);
    let mut table = String::from("| setting | metric | targets | failures |\n|---|---|---|---|\n");
    for (setting, metric, n, f) in &fails {
        let _ = writeln!(table, "| {setting} | {} | {n} | {f} |", metric.name());
    }
    let recall_least = SETTINGS.iter().all(|setting| {
        let of: Vec<_> = fails.iter().filter(|f| f.0 == *setting).collect();
        let recall = of.iter().find(|f| f.1 == Metric::Recall).map(|f| f.3);
        recall.is_none_or(|rf| of.iter().all(|f| rf <= f.3))
    });
    let _ = write!(
        s,
        "## 5. Ranking sources by recall fails least often to pick the best one: {}\n\n{table}\nThe best source of a target is the one whose fine-tune ends with the lowest FID; `selection.csv` has each ranking.\n\n",
        yes_no(recall_least)
    );
    let _ = write!(s, "## Selection scores\n\n| target | source | setting | FID | KID | precision | recall |\n|---|---|---|---|---|---|---|\n");
    for sel in &r.selections {
        for setting in SETTINGS {
            if let Some(sc) = setting_scores(sel, setting) {
                let _ = writeln!(
                    s,
                    "| {} | {} | {setting} | {} | {} | {} | {} |",
                    sel.target,
                    sel.source,
                    fmt(sc.fid),
                    fmt(sc.kid),
                    fmt(sc.precision),
                    fmt(sc.recall)
                );
            }
        }
    }
    s
}
