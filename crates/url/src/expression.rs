//! Safe Browsing's host-suffix × path-prefix lookup expressions ("Suffix/Prefix Expressions"
//! in the "URLs and Hashing" page): a URL is on a list when any of these strings is.

use crate::CanonicalUrl;

/// Host suffixes are taken from the last this many labels (the spec: "starting with the last
/// five components and successively removing the leading component"), so with the exact host
/// at most 5 hosts are tried. A suffix is never a single label (the top-level domain).
pub const MAX_HOST_SUFFIX_LABELS: usize = 5;

/// Path prefixes hold at most this many components after the root: "/", "/1/", "/1/2/",
/// "/1/2/3/" (the spec's "four paths formed by starting at the root and successively
/// appending path components"), so with the exact path with and without query at most 6
/// paths are tried.
pub const MAX_PATH_PREFIX_COMPONENTS: usize = 3;

/// The lookup expressions of `url`, without scheme, exactly as the spec lists them: for each
/// host (the exact host, then suffixes from the longest), each path (the exact path with its
/// query when the query is not empty, the exact path, then the prefixes from the root). At most
/// 5 × 6 = 30; an IP host gives only itself.
///
/// ```
/// let url = safeguard_url::CanonicalUrl::parse("http://a.b.c/1/2.html?param=1").unwrap();
/// assert_eq!(safeguard_url::expressions(&url), [
///     "a.b.c/1/2.html?param=1", "a.b.c/1/2.html", "a.b.c/", "a.b.c/1/",
///     "b.c/1/2.html?param=1", "b.c/1/2.html", "b.c/", "b.c/1/",
/// ]);
/// ```
pub fn expressions(url: &CanonicalUrl) -> Vec<String> {
    let mut out = Vec::new();
    for host in host_suffixes(url, MAX_HOST_SUFFIX_LABELS) {
        for path in path_variants(url, MAX_PATH_PREFIX_COMPONENTS) {
            out.push(format!("{host}{path}"));
        }
    }
    out
}

/// The exact host, then its suffixes of `max_labels` labels down to 2 (none for an IP host).
/// `max_labels` is the spec's 5 for [`expressions`]; a list holding deeper domains may ask
/// for more (see `UrlList`).
pub(crate) fn host_suffixes(url: &CanonicalUrl, max_labels: usize) -> impl Iterator<Item = &str> {
    let host = url.host();
    let longest = if url.host_is_ip() {
        0
    } else {
        // A canonical name has no empty labels, so every dot separates two.
        let labels = host.bytes().filter(|&b| b == b'.').count() + 1;
        max_labels.min(labels - 1)
    };
    // The suffix of k labels starts just after the k-th dot from the right. Hosts are short,
    // so scanning again for each k is cheaper than collecting the dots somewhere.
    let suffixes = (2..=longest).rev().map(move |k| {
        let dot = host
            .rmatch_indices('.')
            .nth(k - 1)
            .map_or(0, |(i, _)| i + 1);
        &host[dot..]
    });
    std::iter::once(host).chain(suffixes)
}

/// The exact path with its query (when the query is not empty), the exact path, then the
/// prefixes "/", "/1/", ... of up to `max_components` components, each once.
///
/// A bare '?' gives no separate expression: "a.b/?" is looked up as "a.b/" only, as in Google's
/// clients (the spec says "including query parameters", and there are none).
pub(crate) fn path_variants(
    url: &CanonicalUrl,
    max_components: usize,
) -> impl Iterator<Item = &str> {
    let path = url.path();
    let with_query = url
        .query()
        .filter(|q| !q.is_empty())
        .map(|_| url.path_and_query());
    // A canonical path starts with '/' and has no "//", so the prefix with i components ends
    // at its (i + 1)th slash. The prefix equal to the whole path is the exact path, given
    // already.
    let prefixes = path
        .match_indices('/')
        .take(max_components + 1)
        .map(move |(i, _)| &path[..=i])
        .filter(move |prefix| prefix.len() < path.len());
    with_query
        .into_iter()
        .chain(std::iter::once(path))
        .chain(prefixes)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hosts(url: &str, max: usize) -> Vec<String> {
        let url = CanonicalUrl::parse(url).unwrap();
        host_suffixes(&url, max).map(String::from).collect()
    }

    fn paths(url: &str, max: usize) -> Vec<String> {
        let url = CanonicalUrl::parse(url).unwrap();
        path_variants(&url, max).map(String::from).collect()
    }

    #[test]
    fn host_suffix_counts() {
        assert_eq!(hosts("http://b/", 5), ["b"]);
        assert_eq!(hosts("http://a.b/", 5), ["a.b"]);
        assert_eq!(hosts("http://a.b.c/", 5), ["a.b.c", "b.c"]);
        assert_eq!(
            hosts("http://a.b.c.d.e.f/", 5),
            ["a.b.c.d.e.f", "b.c.d.e.f", "c.d.e.f", "d.e.f", "e.f"]
        );
        assert_eq!(
            hosts("http://a.b.c.d.e.f.g/", 5),
            ["a.b.c.d.e.f.g", "c.d.e.f.g", "d.e.f.g", "e.f.g", "f.g"]
        );
        // A deeper limit, as a list with deep domains asks for.
        assert_eq!(
            hosts("http://a.b.c.d.e.f.g/", 6),
            [
                "a.b.c.d.e.f.g",
                "b.c.d.e.f.g",
                "c.d.e.f.g",
                "d.e.f.g",
                "e.f.g",
                "f.g"
            ]
        );
        assert_eq!(hosts("http://1.2.3.4/", 5), ["1.2.3.4"]);
        assert_eq!(hosts("http://[2001:db8::1]/", 5), ["[2001:db8::1]"]);
    }

    #[test]
    fn path_variant_lists() {
        assert_eq!(paths("http://a/", 3), ["/"]);
        assert_eq!(paths("http://a/?", 3), ["/"]);
        assert_eq!(paths("http://a/?x", 3), ["/?x", "/"]);
        assert_eq!(paths("http://a/1/", 3), ["/1/", "/"]);
        assert_eq!(
            paths("http://a/1/2.html?param=1", 3),
            ["/1/2.html?param=1", "/1/2.html", "/", "/1/"]
        );
        assert_eq!(
            paths("http://a/1/2/3/4/5/", 3),
            ["/1/2/3/4/5/", "/", "/1/", "/1/2/", "/1/2/3/"]
        );
        assert_eq!(
            paths("http://a/1/2/3/", 3),
            ["/1/2/3/", "/", "/1/", "/1/2/"]
        );
        assert_eq!(
            paths("http://a/1/2/3/4/5/6.html", 5),
            [
                "/1/2/3/4/5/6.html",
                "/",
                "/1/",
                "/1/2/",
                "/1/2/3/",
                "/1/2/3/4/",
                "/1/2/3/4/5/"
            ]
        );
    }
}
