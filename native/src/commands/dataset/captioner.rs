//! Captions from any OpenAI-compatible vision chat endpoint (llama.cpp's server, Ollama, vLLM
//! running LLaVA 1.5…), asked the official FGID prompts verbatim about the original photo, as
//! `FGID_caption.py` asks LLaVA: greedy (temperature 0), at most 512 new tokens, the image
//! before the question.

use std::time::Duration;

use anyhow::{Context, Result, bail};
use base64::Engine as _;
use consistentid_train::dataset::captions::{Captions, PROMPT_FACE, PROMPT_PEOPLE};

/// Environment variables read for a bearer key (never printed).
const KEY_VARS: [&str; 2] = ["CONSISTENTID_CAPTIONER_KEY", "OPENAI_API_KEY"];
/// Tries per question when the server is unreachable or answers 5xx.
const TRIES: u32 = 3;

pub struct Captioner {
    agent: ureq::Agent,
    url: String,
    model: String,
    key: Option<String>,
}

/// `http://host:8080`, `…/v1` or the full `…/v1/chat/completions`.
fn completions_url(url: &str) -> String {
    let url = url.trim_end_matches('/');
    if url.ends_with("/chat/completions") {
        url.to_string()
    } else if url.ends_with("/v1") {
        format!("{url}/chat/completions")
    } else {
        format!("{url}/v1/chat/completions")
    }
}

/// The answer's text: `choices[0].message.content`, a string or a list of text parts.
fn answer_text(body: &serde_json::Value) -> Option<String> {
    let content = &body["choices"][0]["message"]["content"];
    let text = match content {
        serde_json::Value::String(s) => s.clone(),
        serde_json::Value::Array(parts) => parts
            .iter()
            .filter_map(|p| p["text"].as_str())
            .collect::<Vec<_>>()
            .join(""),
        _ => return None,
    };
    let text = text.trim().to_string();
    (!text.is_empty()).then_some(text)
}

impl Captioner {
    pub fn new(url: &str, model: &str) -> Self {
        let agent = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .timeout_global(Some(Duration::from_secs(600)))
            .build()
            .into();
        Self {
            agent,
            url: completions_url(url),
            model: model.to_string(),
            key: KEY_VARS.iter().find_map(|v| std::env::var(v).ok()),
        }
    }

    pub fn url(&self) -> &str {
        &self.url
    }

    /// Both captions of one photo (`bytes` as read from its file).
    pub fn captions(&self, bytes: &[u8], mime: &str) -> Result<Captions> {
        let uri = format!(
            "data:{mime};base64,{}",
            base64::engine::general_purpose::STANDARD.encode(bytes)
        );
        Ok(Captions {
            people: self.ask(&uri, PROMPT_PEOPLE)?,
            face: self.ask(&uri, PROMPT_FACE)?,
        })
    }

    fn ask(&self, image_uri: &str, prompt: &str) -> Result<String> {
        let body = serde_json::json!({
            "model": self.model,
            "temperature": 0,
            "max_tokens": 512,
            "messages": [{
                "role": "user",
                "content": [
                    {"type": "image_url", "image_url": {"url": image_uri}},
                    {"type": "text", "text": prompt},
                ],
            }],
        });
        let mut last = String::new();
        for attempt in 0..TRIES {
            if attempt > 0 {
                std::thread::sleep(Duration::from_secs(1 << attempt));
            }
            let mut request = self
                .agent
                .post(&self.url)
                .header("Content-Type", "application/json");
            if let Some(key) = &self.key {
                request = request.header("Authorization", &format!("Bearer {key}"));
            }
            let mut response = match request.send(body.to_string().as_bytes()) {
                Ok(r) => r,
                Err(e) => {
                    last = format!("cannot reach the captioner at {}: {e}", self.url);
                    continue;
                }
            };
            let status = response.status().as_u16();
            let text = response
                .body_mut()
                .read_to_string()
                .with_context(|| format!("the captioner at {} sent no readable body", self.url))?;
            if status >= 500 {
                last = format!("the captioner at {} answered {status}", self.url);
                continue;
            }
            if status >= 400 {
                let snippet: String = text.chars().take(300).collect();
                bail!("the captioner at {} answered {status}: {snippet}", self.url);
            }
            let json: serde_json::Value = serde_json::from_str(&text)
                .with_context(|| format!("the captioner at {} did not answer JSON", self.url))?;
            return answer_text(&json).with_context(|| {
                format!(
                    "the captioner at {} gave no text in choices[0].message.content",
                    self.url
                )
            });
        }
        bail!("{last} (tried {TRIES} times)")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_and_answers() {
        assert_eq!(
            completions_url("http://h:8080/"),
            "http://h:8080/v1/chat/completions"
        );
        assert_eq!(
            completions_url("http://h/v1"),
            "http://h/v1/chat/completions"
        );
        let json = serde_json::json!({"choices": [{"message": {"content": [{"type": "text", "text": " a "}, {"text": "b"}]}}]});
        assert_eq!(answer_text(&json).as_deref(), Some("a b"));
        assert_eq!(answer_text(&serde_json::json!({"choices": []})), None);
    }
}
