//! The host half of Safe Browsing canonicalisation: raw (fully unescaped) host bytes in, the
//! canonical host out, before re-escaping.

use std::io::Write as _;
use std::net::Ipv4Addr;

use url::Host;

use crate::canonical::push_escaped;

/// Canonicalises `raw`, the authority after user info has been removed, port included, and
/// appends it, escaped, to `out`. Returns whether the host is an IP address (for which Safe
/// Browsing checks no suffixes), or `None`, with `out` unchanged, when no host is left
/// (empty, or only dots).
pub(crate) fn write_host(raw: &[u8], out: &mut Vec<u8>) -> Option<bool> {
    // A bracketed IPv6 literal may contain ':'; anything else ends at the first ':', and what
    // follows is a port (dropped by the spec). Cutting at the first rather than the last ':'
    // keeps the result idempotent: "a.com:1:2" gives "a.com", never "a.com:1".
    if raw.first() == Some(&b'[') {
        if let Some(end) = raw.iter().position(|&b| b == b']') {
            if let Some(is_ip) = write_ipv6(&raw[..=end], out) {
                return Some(is_ip);
            }
        }
    }
    let name = match raw.iter().position(|&b| b == b':') {
        Some(colon) => &raw[..colon],
        None => raw,
    };

    // IDN to punycode (spec: "convert the URL to the ASCII Punycode representation"). Only a
    // host that is valid UTF-8 with non-ASCII in it goes through UTS 46: that is where the
    // `idna` crate (the one the `url` crate uses) does exactly what browsers do, mapping
    // full-width letters and the ideographic full stop as well. Bytes that are not UTF-8
    // (from an escape like %80) or that UTS 46 rejects stay as they are and are
    // percent-escaped, as the spec's "http://\x01\x80.com/" vector expects; failing the
    // whole URL instead would let one odd byte hide a listed host.
    let converted;
    let name: &[u8] = if !name.is_ascii() && std::str::from_utf8(name).is_ok() {
        match idna::domain_to_ascii_cow(name, idna::AsciiDenyList::URL) {
            // The URL deny list keeps '/', '?', '#', '@', ':', '%' and controls out of the
            // result (full-width "／" maps to '/'), so the output re-parses to the same host.
            Ok(ascii) => {
                converted = ascii.into_owned().into_bytes();
                &converted
            }
            Err(_) => name,
        }
    } else {
        name
    };

    // Spec steps 1, 2 and 4 in one pass: no leading or trailing dots, no runs of dots,
    // lowercase; escaped as it goes.
    let start = out.len();
    let mut dot_pending = false;
    for &b in name {
        if b == b'.' {
            dot_pending = out.len() > start;
            continue;
        }
        if dot_pending {
            out.push(b'.');
            dot_pending = false;
        }
        push_escaped(b.to_ascii_lowercase(), out);
    }
    if out.len() == start {
        return None;
    }
    // Step 3, IPv4. The name is lowercase by now, which the IPv4 grammar does not mind, and
    // an escaped byte ('%') rules an address out anyway.
    if let Some(addr) = ipv4(&out[start..]) {
        out.truncate(start);
        // Writing to a Vec cannot fail.
        let _ = write!(out, "{addr}");
        return Some(true);
    }
    Some(false)
}

/// Any legal IPv4 form: 1 to 4 parts, each decimal, octal (leading 0) or hex (0x), the last
/// filling the remaining bytes ("3279880203", "0xc3.0177.11", "195.127.11").
///
/// The WHATWG IPv4 parser in the `url` crate is exactly this (it is inet_aton's grammar), so
/// it decides. It differs from the Go reference client, which truncates out-of-range parts
/// ("276.2.3" -> "20.2.0.3"); that is not a legal address, and browsers treat the host as a
/// name, so this does too.
fn ipv4(name: &[u8]) -> Option<Ipv4Addr> {
    // Only strings made of these bytes can be IPv4; the check keeps ordinary names away from
    // the url crate's full host parser (and its IDNA pass), which would be wasted work.
    let candidate = name
        .iter()
        .all(|b| b.is_ascii_hexdigit() || matches!(b, b'.' | b'x' | b'X'))
        && name.iter().any(u8::is_ascii_digit);
    if !candidate {
        return None;
    }
    // Only ASCII got here, so this cannot fail.
    let s = std::str::from_utf8(name).ok()?;
    match Host::parse(s) {
        Ok(Host::Ipv4(addr)) => Some(addr),
        _ => None,
    }
}

/// A bracketed IPv6 literal, compressed as RFC 5952 says (lowercase hex, longest zero run as
/// `::`). Safe Browsing's current text adds that IPv4-mapped (`::ffff:1.2.3.4`) and NAT64
/// (`64:ff9b::1.2.3.4`) addresses become the IPv4 address, so the same server is listed once.
/// Always an IP: returns `Some(true)` when written, `None` when `bracketed` is no address.
fn write_ipv6(bracketed: &[u8], out: &mut Vec<u8>) -> Option<bool> {
    let s = std::str::from_utf8(bracketed).ok()?;
    let Ok(host @ Host::Ipv6(addr)) = Host::parse(s) else {
        return None;
    };
    let seg = addr.segments();
    let v4 = if let Some(v4) = addr.to_ipv4_mapped() {
        Some(v4)
    } else if seg[..6] == [0x64, 0xff9b, 0, 0, 0, 0] {
        let [a, b] = seg[6].to_be_bytes();
        let [c, d] = seg[7].to_be_bytes();
        Some(Ipv4Addr::new(a, b, c, d))
    } else {
        None
    };
    // Writing to a Vec cannot fail.
    let _ = match v4 {
        Some(v4) => write!(out, "{v4}"),
        None => write!(out, "{host}"),
    };
    Some(true)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn host(s: &[u8]) -> Option<String> {
        let mut out = Vec::new();
        write_host(s, &mut out).map(|_| String::from_utf8(out).unwrap())
    }

    #[test]
    fn ipv4_forms() {
        // The Go reference client's parseIPAddress vectors, where they are legal addresses.
        for (input, want) in [
            ("255.0.0.1", "255.0.0.1"),
            ("12.0x12.01234", "12.18.2.156"),
            ("012.034.01.055", "10.28.1.45"),
            ("0x12.0x43.0x44.0x01", "18.67.68.1"),
            ("167838211", "10.1.2.3"),
            ("3279880203", "195.127.0.11"),
            ("4294967295", "255.255.255.255"),
            ("1.2.3", "1.2.0.3"),
            ("1.2", "1.0.0.2"),
            ("0XC3.0177.11", "195.127.0.11"),
        ] {
            assert_eq!(host(input.as_bytes()).as_deref(), Some(want), "{input}");
        }
    }

    #[test]
    fn not_ipv4_stays_a_name() {
        // Too many parts, out of range, not numbers: names, lowercased (Go's client turns
        // "276.2.3" into 20.2.0.3 by truncation; that is no legal address).
        for (input, want) in [
            ("123.123.0.0.1", "123.123.0.0.1"),
            ("276.2.3", "276.2.3"),
            ("1.2.3.00x0", "1.2.3.00x0"),
            ("4294967296", "4294967296"),
            ("Face.BAD", "face.bad"),
        ] {
            assert_eq!(host(input.as_bytes()).as_deref(), Some(want), "{input}");
        }
    }

    #[test]
    fn ipv6_forms() {
        for (input, want) in [
            ("[2001:0db8:0000::1]", "[2001:db8::1]"),
            (
                "[FEDC:BA98:7654:3210:FEDC:BA98:7654:3210]:80",
                "[fedc:ba98:7654:3210:fedc:ba98:7654:3210]",
            ),
            ("[::ffff:1.2.3.4]", "1.2.3.4"),
            ("[64:ff9b::1.2.3.4]", "1.2.3.4"),
            ("[2001:470:1:18::114]", "[2001:470:1:18::114]"),
        ] {
            assert_eq!(host(input.as_bytes()).as_deref(), Some(want), "{input}");
        }
    }

    #[test]
    fn dots_ports_and_case() {
        assert_eq!(
            host(b"..www.Example...COM..:8080").as_deref(),
            Some("www.example.com")
        );
        assert_eq!(host(b"a.com:1:2").as_deref(), Some("a.com"));
        assert_eq!(host(b"...").as_deref(), None);
        assert_eq!(host(b":80").as_deref(), None);
    }

    #[test]
    fn idn_to_punycode() {
        assert_eq!(
            host("www.ümlat.com".as_bytes()).as_deref(),
            Some("www.xn--mlat-zra.com")
        );
        // Full-width letters and the ideographic full stop map as browsers map them.
        assert_eq!(
            host("ｅｘａｍｐｌｅ。com".as_bytes()).as_deref(),
            Some("example.com")
        );
        // Not UTF-8: kept as bytes, escaped.
        assert_eq!(host(b"\x01\x80.com").as_deref(), Some("%01%80.com"));
        // UTS 46 rejects it (a space): kept as bytes, escaped, lowercased.
        assert_eq!(
            host("A \u{fc}.com".as_bytes()).as_deref(),
            Some("a%20%C3%BC.com")
        );
    }
}
