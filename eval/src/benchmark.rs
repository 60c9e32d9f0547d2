//! Benchmarks: the prompt CSV (the official `evaluation/EvaluationIMGs_stars_prompts.csv`
//! format, `Image_Name,Prompt`, with an optional `Category` column), the prompt categories of
//! FastComposer's and PhotoMaker's prompt families, and which reference an image belongs to.

/// One row of a prompt CSV.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct PromptRow {
    /// The reference photo's file name (`albert_einstein.png`).
    pub reference: String,
    pub prompt: String,
    pub category: String,
    /// 0-based position among this reference's rows.
    pub index: usize,
}

/// The official benchmark's 45 prompts per identity, by category (written with "man"; a
/// woman's rows say "woman"). The action rows keep PhotoMaker's trigger word "img".
const OFFICIAL: [(&str, &[&str]); 5] = [
    (
        "accessory",
        &[
            "a man wearing a red hat",
            "a man wearing a santa hat",
            "a man wearing a rainbow scarf",
            "a man wearing a black top hat and a monocle",
            "a man in a chef outfit",
            "a man in a firefighter outfit",
            "a man in a police outfit",
            "a man wearing pink glasses",
            "a man wearing a yellow shirt",
            "a man in a purple wizard outfit",
        ],
    ),
    (
        "style",
        &[
            "a painting of a man in the style of banksy",
            "a painting of a man in the style of vincent van gogh",
            "a colorful graffiti painting of a man",
            "a watercolor painting of a man",
            "a greek marble sculpture of a man",
            "a street art mural of a man",
            "a black and white photograph of a man",
            "a pointillism painting of a man",
            "a japanese woodblock print of a man",
            "a street art stencil of a man",
        ],
    ),
    (
        "action",
        &[
            "a man img riding a horse",
            "a man img holding a glass of wine",
            "a man img holding a piece of cake",
            "a man img giving a lecture",
            "a man img reading a book",
            "a man img gardening in the backyard",
            "a man img cooking a meal",
            "a man img working out at the gym",
            "a man img walking the dog",
            "a man img baking cookies",
        ],
    ),
    (
        "extra",
        &[
            "a man img wearing a doctoral cap",
            "a man img wearing a spacesuit",
            "a man img wearing sunglasses and necklace",
            "a man coding in front of a computer",
            "a man in a helmet and vest riding a motorcycle",
        ],
    ),
    (
        "context",
        &[
            "a man in the jungle",
            "a man in the snow",
            "a man on the beach",
            "a man on a cobblestone street",
            "a man on top of pink fabric",
            "a man on top of a wooden floor",
            "a man with a city in the background",
            "a man with a mountain in the background",
            "a man with a blue house in the background",
            "a man on top of a purple rug in a forest",
        ],
    ),
];

/// The category of a prompt of the official families, else `other`.
pub fn category_of(prompt: &str) -> &'static str {
    let p = prompt.trim().to_lowercase().replace("woman", "man");
    OFFICIAL
        .iter()
        .find(|(_, prompts)| prompts.contains(&p.as_str()))
        .map(|(c, _)| *c)
        .unwrap_or("other")
}

/// One CSV line's fields (double quotes around a field, `""` inside one).
fn fields(line: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut field = String::new();
    let mut quoted = false;
    let mut chars = line.chars().peekable();
    while let Some(c) = chars.next() {
        match (c, quoted) {
            ('"', true) if chars.peek() == Some(&'"') => {
                field.push('"');
                chars.next();
            }
            ('"', _) => quoted = !quoted,
            (',', false) => out.push(std::mem::take(&mut field)),
            _ => field.push(c),
        }
    }
    out.push(field);
    out.into_iter().map(|f| f.trim().to_string()).collect()
}

/// Reads a prompt CSV; errors name the line.
pub fn parse_prompts(text: &str) -> Result<Vec<PromptRow>, String> {
    let mut lines = text
        .lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty());
    let Some((_, header)) = lines.next() else {
        return Err("the prompt file is empty".into());
    };
    let header: Vec<String> = fields(header.trim_start_matches('\u{feff}'))
        .into_iter()
        .map(|h| h.to_lowercase())
        .collect();
    let column = |name: &str| header.iter().position(|h| h == name);
    let (Some(image), Some(prompt)) = (column("image_name"), column("prompt")) else {
        return Err(format!(
            "the prompt file's header must name Image_Name and Prompt (got {})",
            header.join(",")
        ));
    };
    let category = column("category");
    let mut rows: Vec<PromptRow> = Vec::new();
    for (n, line) in lines {
        let f = fields(line);
        let get = |i: usize| f.get(i).cloned().unwrap_or_default();
        let (reference, text) = (get(image), get(prompt));
        if reference.is_empty() || text.is_empty() {
            return Err(format!("line {}: an empty image name or prompt", n + 1));
        }
        let index = rows.iter().filter(|r| r.reference == reference).count();
        let category = category
            .map(get)
            .filter(|c| !c.is_empty())
            .unwrap_or_else(|| category_of(&text).to_string());
        rows.push(PromptRow {
            reference,
            prompt: text,
            category,
            index,
        });
    }
    Ok(rows)
}

/// The file stem (name without its last extension).
pub fn stem(name: &str) -> &str {
    let base = name.rsplit(['/', '\\']).next().unwrap_or(name);
    match base.rfind('.') {
        Some(i) if i > 0 => &base[..i],
        _ => base,
    }
}

/// Which reference (by stem) an image belongs to, and the number after it if any: an image
/// `{ref}/{k}-….png` (a folder per reference) or `{ref}_{k}_….png` / `{ref}-{k}-….png`; the
/// longest matching stem wins. `k` is the prompt's position among the reference's rows.
pub fn match_reference<'a>(
    image: &str,
    references: &'a [String],
) -> Option<(&'a str, Option<usize>)> {
    let path = image.replace('\\', "/");
    let (folder, file) = match path.rsplit_once('/') {
        Some((dir, file)) => (dir.rsplit('/').next().unwrap_or(dir), file),
        None => ("", path.as_str()),
    };
    let leading_number = |rest: &str| -> Option<usize> {
        let digits: String = rest
            .trim_start_matches(['_', '-', '.'])
            .chars()
            .take_while(char::is_ascii_digit)
            .collect();
        digits.parse().ok()
    };
    let mut best: Option<(&str, Option<usize>)> = None;
    for r in references {
        let s = stem(r);
        let found = if folder == s {
            Some(leading_number(file))
        } else {
            file.strip_prefix(s)
                .filter(|rest| rest.starts_with(['_', '-', '.']))
                .map(leading_number)
        };
        if let Some(k) = found
            && best.is_none_or(|(b, _)| s.len() > b.len())
        {
            best = Some((s, k));
        }
    }
    best.map(|(s, k)| {
        let name = references
            .iter()
            .find(|r| stem(r) == s)
            .map(String::as_str)
            .unwrap_or(s);
        (name, k)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_official_csv_format_and_its_categories() {
        let csv = "Image_Name,Prompt\nalbert_einstein.png,a man wearing a red hat\nalbert_einstein.png,\"a man, img riding\"\ntaylor_swift.png,a painting of a woman in the style of Banksy\n";
        let rows = parse_prompts(csv).unwrap();
        assert_eq!(rows.len(), 3);
        assert_eq!(rows[0].category, "accessory");
        assert_eq!(
            (rows[1].prompt.as_str(), rows[1].index),
            ("a man, img riding", 1)
        );
        assert_eq!(rows[1].category, "other");
        assert_eq!((rows[2].category.as_str(), rows[2].index), ("style", 0));
        assert!(parse_prompts("a,b\n").unwrap_err().contains("Image_Name"));
        assert_eq!(category_of("a woman on the beach"), "context");
        assert_eq!(category_of("A man img wearing a spacesuit"), "extra");
    }

    #[test]
    fn images_find_their_reference() {
        let refs = vec!["ann.png".to_string(), "ann_b.jpg".to_string()];
        assert_eq!(
            match_reference("ann/3-42.png", &refs),
            Some(("ann.png", Some(3)))
        );
        assert_eq!(
            match_reference("x/ann_b_7.png", &refs),
            Some(("ann_b.jpg", Some(7)))
        );
        assert_eq!(
            match_reference("ann-2.png", &refs),
            Some(("ann.png", Some(2)))
        );
        assert_eq!(match_reference("anne.png", &refs), None);
    }
}
