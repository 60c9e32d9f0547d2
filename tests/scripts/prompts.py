"""Prompts for the tokenizer and text-encoder parity fixtures (imported by gen_clip_text.py)."""

FACIAL_TEMPLATE = (
    "The person has one face <|facial|>, two ears <|facial|>, two eyes <|facial|>, "
    "one nose <|facial|>, and one mouth <|facial|>,"
)
INFER_WRAP = (
    "cinematic photo,{}, 50mm photograph, half-length portrait, film, bokeh, professional, 4k, "
    "highly detailed"
)
NEGATIVE = (
    "monochrome, lowres, bad anatomy, worst quality, low quality, blurry((((ugly)))), (((duplicate))), "
    "((morbid)), ((mutilated)), [out of frame], extra fingers, mutated hands, ((poorly drawn hands)), "
    "((poorly drawn face)), (((mutation))), (((deformed))), ((ugly)), blurry, ((bad anatomy)), "
    "(((bad proportions))), ((extra limbs)), cloned face, (((disfigured))). out of frame, ugly, extra "
    "limbs, (bad anatomy), gross proportions, (malformed limbs), ((missing arms)), ((missing legs)), "
    "(((extra arms))), (((extra legs))), mutated hands, (fused fingers), (too many fingers), "
    "(((long neck)))"
)

BASE = [
    "",
    " ",
    "a photo of a cat",
    "A portrait of a woman, wearing sunglasses",
    "photorealistic",
    "A man, in a forest, adventuring",
    "a woman as an astronaut, oil painting",
    "An elderly man with a grey beard, smiling, 85mm, f/1.8",
    "A CAT!!! on a MAT???",
    "Hello, world.",
    "it's a dog's life, isn't it? we're sure they'll know you'd've",
    "Don't stop; won't stop: can't stop!",
    "self-portrait -- (masterpiece:1.2), [[best quality]], {highly detailed}",
    "1girl, solo, looking at viewer, 8k uhd, dslr",
    "3.14159 2718 1,000,000 42nd 1st 2nd 3rd 100% 50/50 #1 $5.99 9:16",
    "2024-05-28T12:00:00Z",
    "0123456789 9876543210",
    "v1.5 sd-1.5 SDXL_1.0 rv6.0-b1",
    "email: someone@example.com, url: https://example.com/a?b=c&d=e",
    "C:\\Users\\face\\photo.png /home/user/face.jpg",
    "tab\tseparated\ttext",
    "new\nline\r\nwindows\rmac",
    "multiple     spaces     between     words",
    "   leading and trailing spaces   ",
    "Café crème brûlée naïve façade",
    "Ünïcödé àccénts ÀÉÎÕÜ",
    "Straße Fußgänger groß",
    "ÆØÅ æøå œuvre",
    "İstanbul ıI Iİ",
    "ΟΔΥΣΣΕΥΣ Ὀδυσσεύς σοφός",
    "Москва, Россия — портрет",
    "مرحبا بالعالم",
    "שלום עולם",
    "नमस्ते दुनिया",
    "สวัสดีชาวโลก",
    "日本語のテキスト、カタカナとひらがな",
    "中文提示词：一个穿着宇航服的女人",
    "한국어 프롬프트 초상화",
    "mixed 中文 and english 日本 text",
    "emoji 😀😃😄 face 🙂",
    "👩‍🚀 astronaut woman ZWJ",
    "👨‍👩‍👧‍👦 family",
    "👍🏽 thumbs up medium skin 👋🏿",
    "🇫🇷 🇯🇵 flags",
    "❤️ heart with variation selector ☺️",
    "🔥🔥🔥 fire fire fire",
    "&amp; &lt;b&gt;bold&lt;/b&gt; &quot;quoted&quot; &#39;apos&#39; &nbsp;",
    "Tom &amp; Jerry",
    "<b>html tags</b> <i>italic</i> <br/>",
    "&#x1F600; &#128512; numeric entities",
    "“smart quotes” ‘single’ «guillemets» „low“",
    "em—dash en–dash ellipsis… bullet • middot ·",
    "™ © ® ° ± × ÷ µ ¶ §",
    "math: ∑ ∫ √ ∞ ≈ ≠ ≤ ≥ π",
    "arrows → ← ↑ ↓ ⇒",
    "zero\u200bwidth\u200bspace",
    "soft\u00adhyphen and nbsp\u00a0here",
    "control\u0007bell\u001bescape",
    "replacement \ufffd char",
    "fullwidth ＡＢＣ １２３",
    "ligatures ﬁ ﬂ ﬀ",
    "decomposed e\u0301 vs composed é",
    "<|startoftext|>explicit bos",
    "explicit eos<|endoftext|>",
    "<|endoftext|><|endoftext|>",
    "<|STARTOFTEXT|> upper special",
    "a <|facial|> b <|image|> c",
    "<|facial|><|facial|>",
    "face<|facial|>eyes<|facial|>",
    "img a man img",
    FACIAL_TEMPLATE,
    "The person has one face <|facial|>, two eyes <|facial|>, one nose <|facial|>, and one mouth <|facial|>,",
    "The person has one face, one nose, two eyes, two ears, and one mouth.",
    "The person has one nose, two eyes, two ears, and a mouth.",
    INFER_WRAP.format("A man, in a forest, adventuring") + "Detail:" + FACIAL_TEMPLATE,
    "Detail:" + FACIAL_TEMPLATE + " Caption:" + INFER_WRAP.format("A woman in a red dress"),
    INFER_WRAP.format("A man, in a forest, adventuring"),
    NEGATIVE,
    "((cross-eye)),((cross-eyed))," + NEGATIVE,
    "word " * 100,
    "supercalifragilisticexpialidocious antidisestablishmentarianism",
    "pneumonoultramicroscopicsilicovolcanoconiosis",
    "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
    "!!!!!!!!!!!!????????........,,,,,,",
    "a-b_c.d,e;f:g!h?i",
    "snake_case camelCase PascalCase kebab-case",
    "x" * 300,
    "'s 't 're 've 'm 'll 'd",
    "''''' \"\"\"\"",
    "`backticks` ~tilde~ ^caret^ |pipe|",
]

SUBJECTS = ["a woman", "a man", "an old man", "a young girl", "a boy", "Albert Einstein", "a chef",
            "a knight", "a cyberpunk hacker", "a grandmother"]
STYLES = ["oil painting", "watercolor", "pixel art", "cinematic lighting", "anime style",
          "3D render, octane", "film noir", "vaporwave", "ukiyo-e woodblock print", "comic book"]
PLACES = ["on Mars", "in Paris at night", "underwater", "in a snowy forest", "at the beach, sunset",
          "in Tokyo's Shibuya crossing", "on the Moon", "in a 1920s jazz club", "in a library",
          "at a café in Montréal"]

GENERATED = []
for i in range(len(SUBJECTS) * 12):
    s = SUBJECTS[i % len(SUBJECTS)]
    st = STYLES[(i * 3) % len(STYLES)]
    pl = PLACES[(i * 7) % len(PLACES)]
    form = i % 6
    if form == 0:
        GENERATED.append(f"{s} {pl}, {st}")
    elif form == 1:
        GENERATED.append(f"A photo of {s.upper()} {pl}!!! ({st}:1.3)")
    elif form == 2:
        GENERATED.append(INFER_WRAP.format(f"{s}, {pl}"))
    elif form == 3:
        GENERATED.append(f"{s} <|facial|> wearing {i} hats, {st}; {pl}. 🎩")
    elif form == 4:
        GENERATED.append(f"portrait of {s}, {st}, {pl}, " + ", ".join(STYLES[: i % 10]))
    else:
        GENERATED.append(f"{s} ({i}%) — {pl} — “{st}”")

PROMPTS = BASE + GENERATED
assert len(PROMPTS) >= 200, len(PROMPTS)

# Text-encoder parity cases: short, empty, markers stripped, longer than 77 tokens.
ENCODER_PROMPTS = [
    "a photo of a cat",
    "",
    "A portrait of a woman, wearing sunglasses, 50mm photograph, bokeh, 4k",
    "Café crème 😀 &amp; 日本",
    NEGATIVE,
]
