//! The CLIP tokenizer on the real SD1.5 vocabulary (open_clip's `bpe_simple_vocab_16e6.txt.gz`,
//! fetched by `tests/scripts/fetch_real_data.sh`) against transformers' `CLIPTokenizer` ids for
//! 200+ prompts, loaded both from the gz archive and from a transformers tokenizer folder.

use consistentid_core::clip::ClipTokenizer;
use consistentid_native::source::DirSource;
use consistentid_tests::{fixture, real_data};

struct Row {
    prompt: String,
    ids: Vec<u32>,
    padded: Vec<u32>,
}

fn rows() -> Vec<Row> {
    let text = std::fs::read_to_string(fixture("clip_tokenizer_real_ids.json")).unwrap();
    let value: serde_json::Value = serde_json::from_str(&text).unwrap();
    let ids = |v: &serde_json::Value| -> Vec<u32> {
        v.as_array()
            .unwrap()
            .iter()
            .map(|x| x.as_u64().unwrap() as u32)
            .collect()
    };
    value
        .as_array()
        .unwrap()
        .iter()
        .map(|r| Row {
            prompt: r["prompt"].as_str().unwrap().to_string(),
            ids: ids(&r["ids"]),
            padded: ids(&r["padded"]),
        })
        .collect()
}

fn check(tokenizer: &ClipTokenizer) {
    let rows = rows();
    assert!(rows.len() >= 200);
    let mut failures = Vec::new();
    for row in &rows {
        if tokenizer.encode(&row.prompt) != row.ids
            || tokenizer.encode_padded(&row.prompt, 77) != row.padded
        {
            failures.push(format!(
                "{:?}\n  want {:?}\n  got  {:?}",
                row.prompt,
                row.ids,
                tokenizer.encode(&row.prompt)
            ));
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} prompts differ:\n{}",
        failures.len(),
        rows.len(),
        failures.join("\n")
    );
}

#[test]
fn gz_vocabulary_matches_transformers() {
    let gz = std::fs::read(real_data("clip/bpe_simple_vocab_16e6.txt.gz")).unwrap();
    let tokenizer = ClipTokenizer::from_bpe_gz(&gz)
        .unwrap()
        .with_consistentid_tokens();
    assert_eq!(tokenizer.token_id("<|image|>"), Some(49408));
    assert_eq!(tokenizer.token_id("<|facial|>"), Some(49409));
    check(&tokenizer);
}

#[test]
fn transformers_folder_matches_transformers() {
    let source = DirSource::open(real_data("clip")).unwrap();
    let tokenizer = ClipTokenizer::from_source(&source, "tokenizer")
        .unwrap()
        .with_consistentid_tokens();
    check(&tokenizer);
}

#[test]
fn known_ids_from_the_spec() {
    let gz = std::fs::read(real_data("clip/bpe_simple_vocab_16e6.txt.gz")).unwrap();
    let t = ClipTokenizer::from_bpe_gz(&gz).unwrap();
    assert_eq!(
        t.encode("a photo of a cat"),
        [49406, 320, 1125, 539, 320, 2368, 49407]
    );
    assert_eq!(
        t.encode("A portrait of a woman, wearing sunglasses"),
        [49406, 320, 5352, 539, 320, 2308, 267, 3309, 12906, 49407]
    );
    assert_eq!(t.encode("photorealistic"), [49406, 1153, 16157, 49407]);
    let padded = t.encode_padded("", 77);
    assert_eq!(&padded[..3], &[49406, 49407, 49407]);
    assert_eq!(padded.len(), 77);
}
