//! Prompt styles: the official `infer.py` wrapping (the default of `generate`) and the 17 presets of
//! the official `evaluation/style_template.py`, by name. Templates hold `{prompt}`.

/// A named prompt template and its negative prompt.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Style {
    pub name: &'static str,
    pub prompt: &'static str,
    pub negative_prompt: &'static str,
}

impl Style {
    /// The user's prompt placed in the template; the user's negative prompt (if any) followed
    /// by the style's, joined as `infer.py` does (no separator).
    pub fn apply(&self, prompt: &str, negative: Option<&str>) -> (String, String) {
        let p = self.prompt.replace("{prompt}", prompt);
        let n = match negative {
            Some(user) => format!("{user}{}", self.negative_prompt),
            None => self.negative_prompt.to_string(),
        };
        (p, n)
    }
}

/// `infer.py`: "cinematic photo," + prompt + the photographic suffix; its negative prompt.
pub const DEFAULT: Style = Style {
    name: "ConsistentID",
    prompt: "cinematic photo,{prompt}, 50mm photograph, half-length portrait, film, bokeh, professional, 4k, highly detailed",
    negative_prompt: "monochrome, lowres, bad anatomy, worst quality, low quality, blurry((((ugly)))), (((duplicate))), ((morbid)), ((mutilated)), [out of frame], extra fingers, mutated hands, ((poorly drawn hands)), ((poorly drawn face)), (((mutation))), (((deformed))), ((ugly)), blurry, ((bad anatomy)), (((bad proportions))), ((extra limbs)), cloned face, (((disfigured))). out of frame, ugly, extra limbs, (bad anatomy), gross proportions, (malformed limbs), ((missing arms)), ((missing legs)), (((extra arms))), (((extra legs))), mutated hands, (fused fingers), (too many fingers), (((long neck)))",
};

/// The presets of `evaluation/style_template.py`.
pub const PRESETS: [Style; 17] = [
    Style {
        name: "Mars",
        prompt: "{prompt}, Post-apocalyptic. Mars Colony, Scavengers roam the wastelands searching for valuable resources, rovers, bright morning sunlight shining, (detailed) (intricate) (8k) (HDR) (cinematic lighting) (sharp focus)",
        negative_prompt: "(lowres, low quality, worst quality:1.2), (text:1.2), watermark, (frame:1.2), deformed, ugly, deformed eyes, blur, out of focus, blurry, deformed cat, deformed, photo, anthropomorphic cat, monochrome, photo, pet collar, gun, weapon, blue, 3d, drones, drone, buildings in background, green",
    },
    Style {
        name: "Neonpunk",
        prompt: "neonpunk style {prompt} . cyberpunk, vaporwave, neon, vibes, vibrant, stunningly beautiful, crisp, detailed, sleek, ultramodern, magenta highlights, dark purple shadows, high contrast, cinematic, ultra detailed, intricate, professional",
        negative_prompt: "painting, drawing, illustration, glitch, deformed, mutated, cross-eyed, ugly, disfigured",
    },
    Style {
        name: "Fantasy art",
        prompt: "ethereal fantasy concept art of  {prompt} . magnificent, celestial, ethereal, painterly, epic, majestic, magical, fantasy art, cover art, dreamy",
        negative_prompt: "photographic, realistic, realism, 35mm film, dslr, cropped, frame, text, deformed, glitch, noise, noisy, off-center, deformed, cross-eyed, closed eyes, bad anatomy, ugly, disfigured, sloppy, duplicate, mutated, black and white",
    },
    Style {
        name: "Enhance",
        prompt: "breathtaking {prompt} . award-winning, professional, highly detailed",
        negative_prompt: "ugly, deformed, noisy, blurry, distorted, grainy",
    },
    Style {
        name: "Comic book",
        prompt: "comic {prompt} . graphic illustration, comic art, graphic novel art, vibrant, highly detailed",
        negative_prompt: "photograph, deformed, glitch, noisy, realistic, stock photo",
    },
    Style {
        name: "Lowpoly",
        prompt: "low-poly style {prompt} . low-poly game art, polygon mesh, jagged, blocky, wireframe edges, centered composition",
        negative_prompt: "noisy, sloppy, messy, grainy, highly detailed, ultra textured, photo",
    },
    Style {
        name: "Line art",
        prompt: "line art drawing {prompt} . professional, sleek, modern, minimalist, graphic, line art, vector graphics",
        negative_prompt: "anime, photorealistic, 35mm film, deformed, glitch, blurry, noisy, off-center, deformed, cross-eyed, closed eyes, bad anatomy, ugly, disfigured, mutated, realism, realistic, impressionism, expressionism, oil, acrylic",
    },
    Style {
        name: "Watercolor",
        prompt: "watercolor painting, {prompt}. vibrant, beautiful, painterly, detailed, textural, artistic",
        negative_prompt: "(lowres, low quality, worst quality:1.2), (text:1.2), watermark, anime, photorealistic, 35mm film, deformed, glitch, low contrast, noisy",
    },
    Style {
        name: "Vibrant Color",
        prompt: "vibrant colorful, ink sketch|vector|2d colors, at nightfall, sharp focus, {prompt}, highly detailed, sharp focus, the clouds,colorful,ultra sharpness",
        negative_prompt: "(lowres, low quality, worst quality:1.2), (text:1.2), watermark, (frame:1.2), deformed, ugly, deformed eyes, blur, out of focus, blurry, deformed cat, deformed, photo, anthropomorphic cat, monochrome, photo, pet collar, gun, weapon, blue, 3d, drones, drone, buildings in background, green",
    },
    Style {
        name: "Jungle",
        prompt: "waist-up \"{prompt} in a Jungle\" by Syd Mead, tangerine cold color palette, muted colors, detailed, 8k,photo r3al,dripping paint,3d toon style,3d style,Movie Still",
        negative_prompt: "(lowres, low quality, worst quality:1.2), (text:1.2), watermark, (frame:1.2), deformed, ugly, deformed eyes, blur, out of focus, blurry, deformed cat, deformed, photo, anthropomorphic cat, monochrome, photo, pet collar, gun, weapon, blue, 3d, drones, drone, buildings in background, green",
    },
    Style {
        name: "Snow",
        prompt: "cinema 4d render, {prompt}, high contrast, vibrant and saturated, sico style, surrounded by magical glow,floating ice shards, snow crystals, cold, windy background, frozen natural landscape in background  cinematic atmosphere,highly detailed, sharp focus, intricate design, 3d, unreal engine, octane render, CG best quality, highres, photorealistic, dramatic lighting, artstation, concept art, cinematic, epic Steven Spielberg movie still, sharp focus, smoke, sparks, art by pascal blanche and greg rutkowski and repin, trending on artstation, hyperrealism painting, matte painting, 4k resolution",
        negative_prompt: "(lowres, low quality, worst quality:1.2), (text:1.2), watermark, (frame:1.2), deformed, ugly, deformed eyes, blur, out of focus, blurry, deformed cat, deformed, photo, anthropomorphic cat, monochrome, photo, pet collar, gun, weapon, blue, 3d, drones, drone, buildings in background, green",
    },
    Style {
        name: "Film Noir",
        prompt: "film noir style, ink sketch|vector, {prompt} highly detailed, sharp focus, ultra sharpness, monochrome, high contrast, dramatic shadows, 1940s style, mysterious, cinematic",
        negative_prompt: "(lowres, low quality, worst quality:1.2), (text:1.2), watermark, (frame:1.2), deformed, ugly, deformed eyes, blur, out of focus, blurry, deformed cat, deformed, photo, anthropomorphic cat, monochrome, photo, pet collar, gun, weapon, blue, 3d, drones, drone, buildings in background, green",
    },
    Style {
        name: "Cinematic",
        prompt: "cinematic still {prompt} . emotional, harmonious, vignette, highly detailed, high budget, bokeh, cinemascope, moody, epic, gorgeous, film grain, grainy",
        negative_prompt: "anime, cartoon, graphic, text, painting, crayon, graphite, abstract, glitch, deformed, mutated, ugly, disfigured",
    },
    Style {
        name: "Disney Charactor",
        prompt: "A Pixar animation character of {prompt} . pixar-style, studio anime, Disney, high-quality",
        negative_prompt: "lowres, bad anatomy, bad hands, text, bad eyes, bad arms, bad legs, error, missing fingers, extra digit, fewer digits, cropped, worst quality, low quality, normal quality, jpeg artifacts, signature, watermark, blurry, grayscale, noisy, sloppy, messy, grainy, highly detailed, ultra textured, photo",
    },
    Style {
        name: "Digital Art",
        prompt: "concept art {prompt} . digital artwork, illustrative, painterly, matte painting, highly detailed",
        negative_prompt: "photo, photorealistic, realism, ugly",
    },
    Style {
        name: "Photographic (Default)",
        prompt: "cinematic photo {prompt} . 35mm photograph, film, bokeh, professional, 4k, highly detailed",
        negative_prompt: "drawing, painting, crayon, sketch, graphite, impressionist, noisy, blurry, soft, deformed, ugly",
    },
    Style {
        name: "(No style)",
        prompt: "{prompt}",
        negative_prompt: "",
    },
];

/// A style by name (case-insensitive; `default` and `consistentid` name [`DEFAULT`]).
pub fn find(name: &str) -> Option<Style> {
    let n = name.to_lowercase();
    if n == "default" || n == "consistentid" {
        return Some(DEFAULT);
    }
    PRESETS.iter().copied().find(|s| s.name.to_lowercase() == n)
}

/// Every style name, for help texts and errors.
pub fn names() -> Vec<&'static str> {
    std::iter::once(DEFAULT.name)
        .chain(PRESETS.iter().map(|s| s.name))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_wraps_as_infer_py() {
        let (p, n) = DEFAULT.apply("A man, in a forest, adventuring", None);
        assert_eq!(
            p,
            "cinematic photo,A man, in a forest, adventuring, 50mm photograph, half-length portrait, film, bokeh, professional, 4k, highly detailed"
        );
        assert!(n.starts_with(
            "monochrome, lowres, bad anatomy, worst quality, low quality, blurry((((ugly))))"
        ));
        assert!(n.ends_with("(((long neck)))"));
    }

    #[test]
    fn presets_are_found_by_name() {
        assert_eq!(PRESETS.len(), 17);
        assert_eq!(find("film noir").unwrap().name, "Film Noir");
        assert_eq!(
            find("(No style)").unwrap().apply("x", None),
            ("x".to_string(), String::new())
        );
        assert!(find("nope").is_none());
        assert_eq!(names().len(), 18);
    }
}
