//! The web app's pages. The host answers each of these addresses with the app, and the app
//! renders the page the address names: one table read by both, so that every page the app
//! links to survives a reload and the host serves the app nowhere else.

/// A page of the app, with the id its address carries.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Page {
    /// `/`: upload a face and write a prompt.
    Create,
    /// `/p/{id}`: one prediction's progress and images.
    Prediction(String),
    /// `/s/{share_id}`: a shared portrait (the host fills in its link-preview tags).
    Share(String),
    /// `/mine`: this browser's predictions.
    Mine,
    /// `/bench`: the in-browser analysis benchmark.
    Bench,
}

/// Which page a route shows (a [`Page`] without its id).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PageKind {
    Create,
    Prediction,
    Share,
    Mine,
    Bench,
}

/// The app's routes, in the host router's syntax (`{name}`: one path segment).
pub const PAGES: [(&str, PageKind); 5] = [
    ("/", PageKind::Create),
    ("/p/{id}", PageKind::Prediction),
    ("/s/{share_id}", PageKind::Share),
    ("/mine", PageKind::Mine),
    ("/bench", PageKind::Bench),
];

impl Page {
    /// The page at `address` (a path, with or without a query or fragment); `None` when no
    /// route of [`PAGES`] matches.
    pub fn at(address: &str) -> Option<Page> {
        let path = address.split(['?', '#']).next().unwrap_or_default();
        let parts: Vec<&str> = path.split('/').filter(|p| !p.is_empty()).collect();
        PAGES.iter().find_map(|(route, kind)| {
            let pattern: Vec<&str> = route.split('/').filter(|p| !p.is_empty()).collect();
            if pattern.len() != parts.len() {
                return None;
            }
            let mut id = String::new();
            for (want, got) in pattern.iter().zip(&parts) {
                if want.starts_with('{') {
                    id = got.to_string();
                } else if want != got {
                    return None;
                }
            }
            Some(match kind {
                PageKind::Create => Page::Create,
                PageKind::Prediction => Page::Prediction(id),
                PageKind::Share => Page::Share(id),
                PageKind::Mine => Page::Mine,
                PageKind::Bench => Page::Bench,
            })
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_name_their_pages() {
        assert_eq!(Page::at("/"), Some(Page::Create));
        assert_eq!(Page::at(""), Some(Page::Create));
        assert_eq!(Page::at("/p/abc?x=1"), Some(Page::Prediction("abc".into())));
        assert_eq!(Page::at("/s/q1#top"), Some(Page::Share("q1".into())));
        assert_eq!(Page::at("/mine/"), Some(Page::Mine));
        assert_eq!(Page::at("/bench?runs=3"), Some(Page::Bench));
        assert_eq!(Page::at("/p"), None);
        assert_eq!(Page::at("/p/a/b"), None);
        assert_eq!(Page::at("/elsewhere"), None);
    }
}
