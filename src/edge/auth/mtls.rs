//! The principal of a client certificate (mutual TLS), by rules over its subject and SANs in
//! the spirit of Kafka's `ssl.principal.mapping.rules`.
//!
//! A rule is Kafka's, `DEFAULT` or `RULE:pattern/replacement/` with an optional `L` or `U`
//! after the last slash, so a broker's rules can be pasted one per list entry. It matches the
//! subject distinguished name, written as Java's `X500Principal.getName()` writes it (RFC
//! 2253: last RDN first, `emailAddress` as `1.2.840.113549.1.9.1=#16...`), which is the
//! string Kafka's rules see. Prefixed with `SAN:DNS:`, `SAN:URI:` or `SAN:EMAIL:` it matches
//! each subject alternative name of that kind instead, in certificate order. The first rule
//! that matches gives the principal; a certificate no rule matches is refused.
//!
//! As in Kafka: the pattern must match the whole field; `$1`.. in the replacement are its
//! groups (a group the pattern does not have stays literal), `\` escapes the next character,
//! `\/` is a slash. Unlike Kafka, a rule that maps to an empty name does not apply, and the
//! pattern is a Rust `regex` (no look-around or back-references; linear time).

use regex::Regex;
use x509_parser::asn1_rs::{Any, Class};
use x509_parser::extensions::GeneralName;
use x509_parser::x509::X509Name;

/// What a certificate says about its holder.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct CertIdentity {
    /// The subject DN in RFC 2253 form, as Java writes it.
    pub subject: String,
    pub dns: Vec<String>,
    pub uri: Vec<String>,
    pub email: Vec<String>,
}

/// Why a client certificate cannot be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CertError {
    #[error("not a DER X.509 certificate")]
    NotCertificate,
    #[error("the subject alternative names do not parse")]
    SubjectAltNames,
}

impl CertIdentity {
    /// Reads the subject and SANs of a DER certificate (the leaf of the client's chain,
    /// already verified by the TLS handshake).
    pub fn from_der(der: &[u8]) -> Result<CertIdentity, CertError> {
        let (rest, cert) =
            x509_parser::parse_x509_certificate(der).map_err(|_| CertError::NotCertificate)?;
        if !rest.is_empty() {
            return Err(CertError::NotCertificate);
        }
        let mut identity = CertIdentity {
            subject: rfc2253(cert.subject()),
            ..CertIdentity::default()
        };
        let sans = cert
            .subject_alternative_name()
            .map_err(|_| CertError::SubjectAltNames)?;
        for name in sans.iter().flat_map(|ext| ext.value.general_names.iter()) {
            match name {
                GeneralName::DNSName(dns) => identity.dns.push((*dns).to_owned()),
                GeneralName::URI(uri) => identity.uri.push((*uri).to_owned()),
                GeneralName::RFC822Name(email) => identity.email.push((*email).to_owned()),
                _ => {}
            }
        }
        Ok(identity)
    }
}

/// RFC 2253 attribute keywords Java writes by name; every other type is a dotted OID.
const KEYWORDS: [(&str, &str); 9] = [
    ("2.5.4.3", "CN"),
    ("2.5.4.6", "C"),
    ("2.5.4.7", "L"),
    ("2.5.4.8", "ST"),
    ("2.5.4.9", "STREET"),
    ("2.5.4.10", "O"),
    ("2.5.4.11", "OU"),
    ("0.9.2342.19200300.100.1.25", "DC"),
    ("0.9.2342.19200300.100.1.1", "UID"),
];

/// A name as Java's `X500Principal.getName()` (RFC 2253) writes it.
fn rfc2253(name: &X509Name<'_>) -> String {
    let rdns: Vec<String> = name
        .iter_rdn()
        .map(|rdn| {
            rdn.iter()
                .map(|attribute| {
                    let oid = attribute.attr_type().to_id_string();
                    let value = attribute.attr_value();
                    match KEYWORDS.iter().find(|(o, _)| *o == oid) {
                        Some((_, keyword)) => match text(value) {
                            Some(text) => format!("{keyword}={}", escape(&text)),
                            None => format!("{keyword}=#{}", hex(&der(value))),
                        },
                        None => format!("{oid}=#{}", hex(&der(value))),
                    }
                })
                .collect::<Vec<_>>()
                .join("+")
        })
        .collect();
    rdns.into_iter().rev().collect::<Vec<_>>().join(",")
}

/// The text of a directory string, from whichever ASN.1 string type carries it.
fn text(value: &Any<'_>) -> Option<String> {
    if value.class() != Class::Universal {
        return None;
    }
    let data = value.data;
    match value.tag().0 {
        // UTF8String, NumericString, PrintableString, IA5String, VisibleString
        12 | 18 | 19 | 22 | 26 => std::str::from_utf8(data).ok().map(str::to_owned),
        // TeletexString, read as Latin-1 as Java does
        20 => Some(data.iter().map(|b| char::from(*b)).collect()),
        // BMPString
        30 if data.len() % 2 == 0 => char::decode_utf16(
            data.chunks_exact(2)
                .map(|pair| u16::from_be_bytes([pair[0], pair[1]])),
        )
        .collect::<Result<String, _>>()
        .ok(),
        // UniversalString
        28 if data.len() % 4 == 0 => data
            .chunks_exact(4)
            .map(|quad| char::from_u32(u32::from_be_bytes([quad[0], quad[1], quad[2], quad[3]])))
            .collect(),
        _ => None,
    }
}

/// RFC 2253 escaping as Java does it: the special characters (and `=`) anywhere, a space at
/// either end.
fn escape(text: &str) -> String {
    let last = text.chars().count().saturating_sub(1);
    let mut out = String::with_capacity(text.len());
    for (i, c) in text.chars().enumerate() {
        let special = matches!(c, ',' | '=' | '+' | '<' | '>' | '#' | ';' | '"' | '\\');
        if special || (c == ' ' && (i == 0 || i == last)) {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

/// The DER encoding of a value: its tag, length and contents.
fn der(value: &Any<'_>) -> Vec<u8> {
    let class: u8 = match value.class() {
        Class::Universal => 0x00,
        Class::Application => 0x40,
        Class::ContextSpecific => 0x80,
        Class::Private => 0xc0,
    };
    let constructed = if value.header.is_constructed() {
        0x20
    } else {
        0
    };
    let tag = value.tag().0;
    let mut out = Vec::with_capacity(value.data.len() + 8);
    if tag < 31 {
        out.push(class | constructed | tag as u8);
    } else {
        out.push(class | constructed | 0x1f);
        let mut groups = Vec::new();
        let mut rest = tag;
        loop {
            groups.push((rest & 0x7f) as u8);
            rest >>= 7;
            if rest == 0 {
                break;
            }
        }
        for (i, group) in groups.iter().enumerate().rev() {
            out.push(if i == 0 { *group } else { group | 0x80 });
        }
    }
    let len = value.data.len();
    if len < 0x80 {
        out.push(len as u8);
    } else {
        let bytes: Vec<u8> = len
            .to_be_bytes()
            .into_iter()
            .skip_while(|b| *b == 0)
            .collect();
        out.push(0x80 | bytes.len() as u8);
        out.extend(bytes);
    }
    out.extend_from_slice(value.data);
    out
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// The certificate field a rule reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Field {
    Subject,
    Dns,
    Uri,
    Email,
}

/// One mapping rule.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Rule {
    field: Field,
    kind: RuleKind,
}

#[derive(Debug, Clone)]
enum RuleKind {
    Default,
    Pattern {
        regex: Regex,
        replacement: Vec<Piece>,
        case: Case,
    },
}

/// Rules are equal when they were written alike: a reloaded configuration compares its
/// rules with the running ones.
impl PartialEq for RuleKind {
    fn eq(&self, other: &RuleKind) -> bool {
        match (self, other) {
            (RuleKind::Default, RuleKind::Default) => true,
            (
                RuleKind::Pattern {
                    regex,
                    replacement,
                    case,
                },
                RuleKind::Pattern {
                    regex: regex2,
                    replacement: replacement2,
                    case: case2,
                },
            ) => regex.as_str() == regex2.as_str() && replacement == replacement2 && case == case2,
            _ => false,
        }
    }
}

impl Eq for RuleKind {}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Piece {
    Text(String),
    Group(usize),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Case {
    Keep,
    Lower,
    Upper,
}

/// Principal mapping rules, in order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PrincipalMapper {
    rules: Vec<Rule>,
}

/// No rule gave a principal.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("no principal mapping rule matches the client certificate {subject:?}")]
pub struct NoMatchingRule {
    pub subject: String,
}

impl Default for PrincipalMapper {
    /// Kafka's default: the subject DN as it is.
    fn default() -> PrincipalMapper {
        PrincipalMapper {
            rules: vec![Rule {
                field: Field::Subject,
                kind: RuleKind::Default,
            }],
        }
    }
}

impl PrincipalMapper {
    /// Parses rules, reporting every one that is not valid.
    pub fn parse<S: AsRef<str>>(rules: &[S]) -> Result<PrincipalMapper, Vec<String>> {
        let mut problems = Vec::new();
        let mut parsed = Vec::new();
        for text in rules {
            let text = text.as_ref();
            match Rule::parse(text) {
                Ok(rule) => parsed.push(rule),
                Err(problem) => problems.push(format!("rule {text:?}: {problem}")),
            }
        }
        if parsed.is_empty() && problems.is_empty() {
            problems.push("no rule: give at least one (DEFAULT is the subject as it is)".into());
        }
        if problems.is_empty() {
            Ok(PrincipalMapper { rules: parsed })
        } else {
            Err(problems)
        }
    }

    /// The principal of a certificate: the first rule's result that applies.
    pub fn principal(&self, identity: &CertIdentity) -> Result<String, NoMatchingRule> {
        self.rules
            .iter()
            .find_map(|rule| rule.apply(identity))
            .ok_or_else(|| NoMatchingRule {
                subject: identity.subject.clone(),
            })
    }
}

impl Rule {
    fn parse(text: &str) -> Result<Rule, String> {
        let trimmed = text.trim();
        let (field, rest) = [
            ("SAN:DNS:", Field::Dns),
            ("SAN:URI:", Field::Uri),
            ("SAN:EMAIL:", Field::Email),
        ]
        .into_iter()
        .find_map(|(prefix, field)| trimmed.strip_prefix(prefix).map(|rest| (field, rest)))
        .unwrap_or((Field::Subject, trimmed));
        let kind = if rest == "DEFAULT" {
            RuleKind::Default
        } else if let Some(body) = rest.strip_prefix("RULE:") {
            pattern(body)?
        } else {
            return Err("not DEFAULT or RULE:pattern/replacement/[L|U], optionally after SAN:DNS:, SAN:URI: or SAN:EMAIL:".into());
        };
        Ok(Rule { field, kind })
    }

    fn apply(&self, identity: &CertIdentity) -> Option<String> {
        let values: &[String] = match self.field {
            Field::Subject => std::slice::from_ref(&identity.subject),
            Field::Dns => &identity.dns,
            Field::Uri => &identity.uri,
            Field::Email => &identity.email,
        };
        values.iter().find_map(|value| {
            let name = match &self.kind {
                RuleKind::Default => value.clone(),
                RuleKind::Pattern {
                    regex,
                    replacement,
                    case,
                } => {
                    let groups = regex.captures(value)?;
                    let mut name = String::new();
                    for piece in replacement {
                        match piece {
                            Piece::Text(text) => name.push_str(text),
                            Piece::Group(i) => {
                                name.push_str(groups.get(*i).map_or("", |m| m.as_str()))
                            }
                        }
                    }
                    match case {
                        Case::Keep => name,
                        Case::Lower => name.to_lowercase(),
                        Case::Upper => name.to_uppercase(),
                    }
                }
            };
            (!name.is_empty()).then_some(name)
        })
    }
}

/// `pattern/replacement/` and an optional `L` or `U`.
fn pattern(body: &str) -> Result<RuleKind, String> {
    let (pattern, rest) = until_slash(body).ok_or("no / after the pattern")?;
    let (replacement, flags) = until_slash(rest).ok_or("no / after the replacement")?;
    let case = match flags {
        "" => Case::Keep,
        "L" => Case::Lower,
        "U" => Case::Upper,
        other => return Err(format!("{other:?} after the last / is not L or U")),
    };
    // Kafka passes `\/` to Java's regex, where it is a slash.
    let regex = Regex::new(&format!("^(?:{})$", pattern.replace("\\/", "/")))
        .map_err(|e| format!("the pattern is not a regular expression: {e}"))?;
    let groups = regex.captures_len() - 1;
    Ok(RuleKind::Pattern {
        regex,
        replacement: expand(replacement, groups)?,
        case,
    })
}

/// Splits at the first `/` that no `\` escapes.
fn until_slash(text: &str) -> Option<(&str, &str)> {
    let mut escaped = false;
    for (i, c) in text.char_indices() {
        match c {
            _ if escaped => escaped = false,
            '\\' => escaped = true,
            '/' => return Some((&text[..i], &text[i + 1..])),
            _ => {}
        }
    }
    None
}

/// A replacement as Java reads it: `\x` is `x`; `$` and digits name a group, taking as many
/// digits as still name one; a group past the pattern's count stays literal, as Kafka has it.
fn expand(replacement: &str, groups: usize) -> Result<Vec<Piece>, String> {
    let mut pieces = Vec::new();
    let mut text = String::new();
    let mut chars = replacement.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\\' => text.push(chars.next().ok_or("the replacement ends in \\")?),
            '$' => {
                let first = chars
                    .next()
                    .and_then(|d| d.to_digit(10))
                    .ok_or("a $ in the replacement is not followed by a group number (write \\$ for a dollar)")?;
                let mut group = first as usize;
                if group > groups {
                    text.push('$');
                    text.push_str(&group.to_string());
                    continue;
                }
                while let Some(next) = chars.peek().and_then(|d| d.to_digit(10)) {
                    let longer = group * 10 + next as usize;
                    if longer > groups {
                        break;
                    }
                    group = longer;
                    chars.next();
                }
                if !text.is_empty() {
                    pieces.push(Piece::Text(std::mem::take(&mut text)));
                }
                pieces.push(Piece::Group(group));
            }
            c => text.push(c),
        }
    }
    if !text.is_empty() {
        pieces.push(Piece::Text(text));
    }
    Ok(pieces)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn der_of(pem: &str) -> Vec<u8> {
        x509_parser::pem::parse_x509_pem(pem.as_bytes())
            .unwrap()
            .1
            .contents
    }

    fn alice() -> CertIdentity {
        CertIdentity::from_der(&der_of(include_str!("testdata/dn-alice.pem"))).unwrap()
    }

    fn map(rules: &[&str], identity: &CertIdentity) -> Result<String, NoMatchingRule> {
        PrincipalMapper::parse(rules).unwrap().principal(identity)
    }

    #[test]
    fn subjects_read_as_java_writes_them() {
        // Each expected string is what Java 17 printed for the same file (testdata/README.md).
        assert_eq!(
            alice().subject,
            "STREET=1 Main St,2.5.4.5=#13023432,DC=example,1.2.840.113549.1.9.1=#1611616c696365406578616d706c652e636f6d,CN=alice+UID=a1,OU=ops,OU=team-a,O=Acme\\, Inc.,ST=CA,C=US"
        );
        let escapes =
            CertIdentity::from_der(&der_of(include_str!("testdata/dn-escapes.pem"))).unwrap();
        assert_eq!(
            escapes.subject,
            "L=Zürich,O=\\#hash,CN=\\ lead\\#\\\"q\\\"\\<x\\>\\;y\\\\z \\=trail\\ "
        );
        let multi =
            CertIdentity::from_der(&der_of(include_str!("testdata/dn-multivalued.pem"))).unwrap();
        assert_eq!(multi.subject, "O=x,CN=bob+UID=zz");
    }

    #[test]
    fn sans_are_read_by_kind() {
        let alice = alice();
        assert_eq!(alice.dns, vec!["alice.clients.example.com"]);
        assert_eq!(alice.uri, vec!["spiffe://example.com/ns/a/sa/alice"]);
        assert_eq!(alice.email, vec!["alice@example.com"]);
        assert!(CertIdentity::from_der(b"\x30\x03\x02\x01\x01").is_err());
        let mut long = der_of(include_str!("testdata/dn-alice.pem"));
        long.push(0);
        assert_eq!(
            CertIdentity::from_der(&long),
            Err(CertError::NotCertificate)
        );
    }

    #[test]
    fn kafka_style_rules_map_subjects() {
        let alice = alice();
        assert_eq!(map(&["DEFAULT"], &alice).unwrap(), alice.subject);
        assert_eq!(
            PrincipalMapper::default().principal(&alice).unwrap(),
            alice.subject
        );
        // Kafka's documented example shape: CN before OU=ServiceUsers, lower-cased.
        let identity = CertIdentity {
            subject: "CN=Kafka-Client,OU=ServiceUsers,O=Org,C=US".into(),
            ..CertIdentity::default()
        };
        assert_eq!(
            map(
                &["RULE:^CN=(.*?),OU=ServiceUsers.*$/$1/L", "DEFAULT"],
                &identity
            )
            .unwrap(),
            "kafka-client"
        );
        assert_eq!(
            map(
                &["RULE:^CN=(.*?),OU=(.*?),O=(.*?),C=(.*?)$/$1@$2/U"],
                &identity
            )
            .unwrap(),
            "KAFKA-CLIENT@SERVICEUSERS"
        );
        // No match, no DEFAULT: refused.
        let err = map(&["RULE:^CN=(.*?),OU=Admins.*$/$1/"], &identity).unwrap_err();
        assert_eq!(err.subject, identity.subject);
        // The pattern must match the whole subject.
        assert!(map(&["RULE:CN=Kafka-Client/x/"], &identity).is_err());
        assert_eq!(
            map(&["RULE:.*CN=Kafka-Client.*/x/"], &identity).unwrap(),
            "x"
        );
    }

    #[test]
    fn san_rules_pick_the_first_matching_name() {
        let identity = CertIdentity {
            subject: "CN=ignored".into(),
            dns: vec![
                "node-1.internal".into(),
                "team-a.clients.example.com".into(),
            ],
            uri: vec!["spiffe://example.com/ns/team-b/sa/app".into()],
            email: vec![],
        };
        let dns = r"SAN:DNS:RULE:^([a-z-]+)\.clients\.example\.com$/$1/";
        assert_eq!(map(&[dns], &identity).unwrap(), "team-a");
        let uri = r"SAN:URI:RULE:^spiffe:\/\/example\.com\/ns\/([^\/]+)\/sa\/([^\/]+)$/$1:$2/";
        assert_eq!(map(&[uri, dns], &identity).unwrap(), "team-b:app");
        assert_eq!(
            map(&["SAN:DNS:DEFAULT"], &identity).unwrap(),
            "node-1.internal"
        );
        // A kind the certificate does not have gives nothing; the next rule decides.
        assert_eq!(
            map(&["SAN:EMAIL:DEFAULT", "DEFAULT"], &identity).unwrap(),
            "CN=ignored"
        );
    }

    #[test]
    fn replacements_read_groups_and_escapes_as_java() {
        let identity = CertIdentity {
            subject: "abcdefghijkl".into(),
            ..CertIdentity::default()
        };
        let twelve = "RULE:(a)(b)(c)(d)(e)(f)(g)(h)(i)(j)(k)(l)";
        // $12 is group 12; $123 is group 12 then "3"; $13 is group 1 then "3".
        assert_eq!(
            map(&[&format!("{twelve}/$12|$123|$13/")], &identity).unwrap(),
            "l|l3|a3"
        );
        // A group the pattern does not have stays literal (Kafka escapes it).
        assert_eq!(map(&["RULE:(abc).*/$1-$2/"], &identity).unwrap(), "abc-$2");
        assert_eq!(
            map(&[r"RULE:(abc).*/\$1\\\/x/"], &identity).unwrap(),
            r"$1\/x"
        );
        assert_eq!(map(&["RULE:.*/$0!/"], &identity).unwrap(), "abcdefghijkl!");
        // A rule mapping to nothing does not apply.
        assert_eq!(
            map(&["RULE:.*//", "DEFAULT"], &identity).unwrap(),
            "abcdefghijkl"
        );
    }

    #[test]
    fn bad_rules_are_all_reported() {
        let problems = PrincipalMapper::parse(&[
            "RULE:(/x/",
            "RULE:abc",
            "RULE:a/b",
            "RULE:a/b/X",
            "RULE:a/$x/",
            "RULE:a/b\\/",
            "SAN:IP:DEFAULT",
            "default",
            "DEFAULT",
        ])
        .unwrap_err();
        assert_eq!(problems.len(), 8, "{problems:#?}");
        assert!(
            problems[0].contains("not a regular expression"),
            "{}",
            problems[0]
        );
        assert!(
            problems[1].ends_with("no / after the pattern"),
            "{}",
            problems[1]
        );
        assert!(
            problems[2].ends_with("no / after the replacement"),
            "{}",
            problems[2]
        );
        assert!(
            problems[3].ends_with("\"X\" after the last / is not L or U"),
            "{}",
            problems[3]
        );
        assert!(
            problems[4].contains("not followed by a group number"),
            "{}",
            problems[4]
        );
        assert!(
            problems[5].ends_with("no / after the replacement"),
            "{}",
            problems[5]
        );
        assert!(
            problems[6].contains("not DEFAULT or RULE"),
            "{}",
            problems[6]
        );
        assert!(
            problems[7].contains("not DEFAULT or RULE"),
            "{}",
            problems[7]
        );
        let none: [&str; 0] = [];
        assert!(PrincipalMapper::parse(&none).unwrap_err()[0].starts_with("no rule"));
    }
}
