//! The ConsistentID text side (markers, clauses, prompt assembly, facial-token mask) against the
//! Python re-creation of the official functions with the real CLIP tokenizer
//! (tests/scripts/gen_prompts.py): 140 captions × region sets × prompts, exact.

use consistentid_core::clip::ClipTokenizer;
use consistentid_core::consistentid::prompt::{
    FACIAL_CAPTION, build_prompt, process_text_with_markers,
};
use consistentid_native::source::DirSource;
use consistentid_tests::{fixture, real_data};

fn tokenizer() -> ClipTokenizer {
    let source = DirSource::open(real_data("clip")).unwrap();
    ClipTokenizer::from_source(&source, "tokenizer")
        .unwrap()
        .with_consistentid_tokens()
}

#[test]
fn every_case_matches_the_official_algorithm() {
    let tok = tokenizer();
    let cases: Vec<serde_json::Value> = serde_json::from_str(
        &std::fs::read_to_string(fixture("consistentid_prompts.json")).unwrap(),
    )
    .unwrap();
    assert!(cases.len() >= 50);
    for (n, case) in cases.iter().enumerate() {
        let s = |k: &str| case[k].as_str().unwrap().to_string();
        let keys: Vec<String> = case["keys"]
            .as_array()
            .unwrap()
            .iter()
            .map(|k| k.as_str().unwrap().to_string())
            .collect();
        let got = build_prompt(&s("prompt"), &s("caption"), &keys, &tok, 5).unwrap();
        let what = format!(
            "case {n} ({:?} / {:?} / {keys:?})",
            s("prompt"),
            s("caption")
        );
        assert_eq!(got.prompt_face, s("prompt_face"), "{what}");
        assert_eq!(got.prompt_text_only, s("prompt_text_only"), "{what}");
        let ids: Vec<u32> = case["input_ids"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_u64().unwrap() as u32)
            .collect();
        assert_eq!(got.input_ids, ids, "{what}");
        let positions: Vec<usize> = (0..77).filter(|&i| got.facial_token_mask[i]).collect();
        let want: Vec<usize> = case["facial_positions"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_u64().unwrap() as usize)
            .collect();
        assert_eq!(positions, want, "{what}");
        let idx: Vec<usize> = case["facial_token_idx"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_u64().unwrap() as usize)
            .collect();
        assert_eq!(got.facial_token_idx, idx, "{what}");
        let idx_mask: Vec<bool> = case["facial_token_idx_mask"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_bool().unwrap())
            .collect();
        assert_eq!(got.facial_token_idx_mask, idx_mask, "{what}");
        let kept: Vec<String> = case["kept"]
            .as_array()
            .unwrap()
            .iter()
            .map(|k| k.as_str().unwrap().to_string())
            .collect();
        assert_eq!(got.kept_regions, kept, "{what}");
    }
}

#[test]
fn the_default_caption_gives_the_spec_text() {
    let keys: Vec<String> = ["Face", "Left_Eye", "Left_Ear", "Nose", "Upper_Lip"]
        .map(String::from)
        .to_vec();
    let (text, kept) = process_text_with_markers(FACIAL_CAPTION, &keys);
    assert_eq!(
        text,
        "The person has one face <|facial|>, two ears <|facial|>, two eyes <|facial|>, one nose <|facial|>, and one mouth <|facial|>,"
    );
    assert_eq!(kept, keys);
    let no_ears: Vec<String> = ["Face", "Left_Eye", "Nose", "Upper_Lip"]
        .map(String::from)
        .to_vec();
    let (text, _) = process_text_with_markers(FACIAL_CAPTION, &no_ears);
    assert_eq!(
        text,
        "The person has one face <|facial|>, two eyes <|facial|>, one nose <|facial|>, and one mouth <|facial|>,"
    );
}
