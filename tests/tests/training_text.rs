//! The training text (prompt layout, markers, clean ids, facial positions, kept regions) against
//! the official `MyDataset.__getitem__` run on a small FGID-style folder with the real CLIP
//! tokenizer (tests/scripts/gen_training_text.py), exact; includes the spec's worked example
//! (Detail-first, no EOS, facial positions [10, 13, 20, 31, 38]).

use consistentid_core::bisenet::labels::official_name;
use consistentid_core::bisenet::regions::facial_regions;
use consistentid_core::clip::ClipTokenizer;
use consistentid_core::consistentid::training_text::{Layout, training_text};
use consistentid_native::source::DirSource;
use consistentid_tests::{fixture, real_data};

/// The label map gen_training_text.py draws: one 7×7 square per non-background label.
fn label_map(labels: &[u8]) -> Vec<u8> {
    let mut map = vec![0u8; 40 * 40];
    for (i, &v) in labels.iter().filter(|&&l| l != 0).enumerate() {
        let (y0, x0) = (2 + (i / 4) * 9, 2 + (i % 4) * 9);
        for y in y0..y0 + 7 {
            for x in x0..x0 + 7 {
                map[y * 40 + x] = v;
            }
        }
    }
    map
}

#[test]
fn every_case_matches_the_official_dataset() {
    let source = DirSource::open(real_data("clip")).unwrap();
    let tok = ClipTokenizer::from_source(&source, "tokenizer")
        .unwrap()
        .with_consistentid_tokens();
    let cases: Vec<serde_json::Value> =
        serde_json::from_str(&std::fs::read_to_string(fixture("training_text.json")).unwrap())
            .unwrap();
    assert!(cases.len() >= 10);
    for (n, case) in cases.iter().enumerate() {
        let labels: Vec<u8> = serde_json::from_value(case["labels"].clone()).unwrap();
        let keys: Vec<String> = facial_regions(&label_map(&labels), 40, 40)
            .into_iter()
            .map(|(_, l, _)| official_name(l).to_string())
            .collect();
        let got = training_text(
            case["caption"].as_str().unwrap(),
            case["facial_caption"].as_str().unwrap(),
            &keys,
            case["dropped"].as_bool().unwrap(),
            &tok,
            5,
        )
        .unwrap();
        assert_eq!(got.text, case["text"].as_str().unwrap(), "case {n}: text");
        let ids: Vec<u32> = serde_json::from_value(case["input_ids"].clone()).unwrap();
        assert_eq!(got.tokens.input_ids, ids, "case {n}: ids");
        let positions: Vec<usize> = (0..got.tokens.facial_token_mask.len())
            .filter(|&i| got.tokens.facial_token_mask[i])
            .collect();
        let want: Vec<usize> = serde_json::from_value(case["facial_positions"].clone()).unwrap();
        assert_eq!(positions, want, "case {n}: facial positions");
        let idx: Vec<usize> = serde_json::from_value(case["facial_token_idx"].clone()).unwrap();
        let idx_mask: Vec<bool> =
            serde_json::from_value(case["facial_token_idx_mask"].clone()).unwrap();
        assert_eq!(got.tokens.facial_token_idx, idx, "case {n}: idx");
        assert_eq!(
            got.tokens.facial_token_idx_mask, idx_mask,
            "case {n}: idx mask"
        );
        if !case["dropped"].as_bool().unwrap() {
            let kept: Vec<String> = serde_json::from_value(case["kept_regions"].clone()).unwrap();
            assert_eq!(got.kept_regions, kept, "case {n}: kept regions");
        }
        if n == 0 {
            // The worked example of shared/spec/train-eval.md §B3.
            assert_eq!(got.layout, Layout::DetailFirst);
            assert_eq!(positions, [10, 13, 20, 31, 38]);
            assert!(!got.tokens.input_ids.contains(&tok.eos_id()), "no EOS");
        }
        if case["dropped"].as_bool().unwrap() {
            assert_eq!(got.layout, Layout::Dropped);
        }
    }
}
