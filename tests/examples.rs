//! Every example runs through the command line in each format, and its lowered loss and
//! gradient are snapshotted (reviewed by hand: see snapshots/).

mod common;

use common::{examples, run, snapshot_settings, stem};

#[test]
fn every_example_runs_in_text_and_json() {
    for path in examples() {
        let rel = format!("examples/{}", path.file_name().unwrap().to_string_lossy());
        let (code, text, err) = run(&[&rel]);
        assert_eq!(code, 0, "{rel}: {err}");
        assert!(text.contains("gradient:"), "{rel}");
        let (code, json, err) = run(&[&rel, "--format", "json"]);
        assert_eq!(code, 0, "{rel}: {err}");
        let v: serde_json::Value = serde_json::from_str(&json).unwrap();
        let params = v["params"].as_array().unwrap();
        assert_eq!(
            v["gradient"].as_array().unwrap().len(),
            params.len(),
            "{rel}"
        );
        let ev = &v["evaluation"];
        assert_eq!(
            ev["gradient"].as_array().unwrap().len(),
            params.len(),
            "{rel}"
        );
        assert!(ev["loss"].as_f64().unwrap().is_finite(), "{rel}");
        // Cyclic SGD's ξ_1 is not a gradient: it alone has no modified loss.
        let cyclic = v["optimizer"]["order"] == "cyclic";
        let json = json.replace("\"modified_loss\": null", if cyclic { "" } else { "null" });
        assert!(!json.contains("NaN") && !json.contains("null"), "{rel}");
    }
}

#[test]
fn lowered_loss_and_gradient_snapshots() {
    for path in examples() {
        let m = common::load(&path);
        let report = eomderive::derive(
            &eomderive::lang::Source::from_bytes(
                &format!("examples/{}", stem(&path)),
                std::fs::read(&path).unwrap(),
            )
            .unwrap(),
            &eomderive::Options {
                order: 0,
                analyze: false,
                ..Default::default()
            },
        )
        .unwrap();
        assert_eq!(report.model.params, m.params);
        snapshot_settings().bind(|| {
            insta::assert_snapshot!(
                format!("lowered_{}", stem(&path)),
                eomderive::render::text(&report)
            );
        });
    }
}
