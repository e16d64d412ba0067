//! A small OpenAPI 3.0 response validator for conformance tests.
//!
//! It checks JSON bodies against Box's official spec
//! (`../shared/spec/box-openapi.json`, never copied into this repo) and covers
//! the subset of schema keywords that spec uses:
//! `$ref` (local `#/...` only), `allOf`, `oneOf`/`anyOf` (+ `discriminator`),
//! `nullable`, `type`, `enum`, `required`, `properties`,
//! `additionalProperties`, `items`, `minimum`/`maximum`,
//! `minLength`/`maxLength`, `minItems`/`maxItems`/`uniqueItems`, and the
//! formats `date-time` (RFC 3339), `int32` and `int64`.
//!
//! Ignored: annotations (`description`, `example`, `title`, `x-*`,
//! `readOnly`, `writeOnly`, `default`), other `format`s, `pattern` (no regex
//! crate), and `multipleOf`.
//!
//! Deliberate semantic choices:
//! * `integer` means a JSON number serde_json parsed as an integer, so `1.0`
//!   and `1e3` are rejected (JSON Schema draft 4 behaviour, which OpenAPI 3.0
//!   is based on). An emulator should never emit them.
//! * A `null` value is accepted if the schema node says `nullable: true`, or
//!   if one of its direct `allOf` branches does. Box's spec marks optional
//!   sub-objects as `allOf: [{$ref: X}, {}, {nullable: true}]` (for example
//!   `shared_link`), and a strict reading would reject the `null` that Box
//!   really returns. A `nullable: true` also accepts `null` when there is an
//!   `enum` that does not list it.
//! * Otherwise `null` fails any schema with a `type`. A bare `{nullable: false}`
//!   has no `type`, so it adds no constraint.

use serde_json::{Map, Value};
use std::collections::HashSet;
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

/// A parsed OpenAPI document.
pub struct Spec {
    root: Value,
    /// Every `` `word` `` the spec's texts mention, for [`Spec::documents_code`].
    quoted_words: OnceLock<HashSet<String>>,
}

fn spec_path() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/spec/box-openapi.json")
}

impl Spec {
    /// Loads the spec. If the file is missing, this panics when `CI` is set
    /// and otherwise returns `None`, so the caller can skip the test.
    pub fn load() -> Option<Spec> {
        let path = spec_path();
        let text = match std::fs::read_to_string(&path) {
            Ok(text) => text,
            Err(e) if std::env::var_os("CI").is_some() => {
                panic!("Box OpenAPI spec not readable at {} (required under CI): {e}", path.display())
            }
            Err(_) => return None,
        };
        let root = serde_json::from_str(&text).unwrap_or_else(|e| panic!("{} is not valid JSON: {e}", path.display()));
        Some(Spec::from_value(root))
    }

    /// Wraps an already parsed document (used to test the validator on small synthetic specs).
    pub fn from_value(root: Value) -> Spec {
        Spec { root, quoted_words: OnceLock::new() }
    }

    /// The spec path (a key of `paths`) that serves `method` on a route template such as
    /// `/files/{id}/metadata/{scope}/{template}`: placeholders match whatever their names, and
    /// keys that carry a `#variant` are left out.
    pub fn path_for(&self, method: &str, template: &str) -> Option<&str> {
        let shape = |p: &str| {
            let mut out = String::new();
            let mut in_param = false;
            for c in p.chars() {
                match c {
                    '{' => {
                        in_param = true;
                        out.push_str("{}");
                    }
                    '}' => in_param = false,
                    c if !in_param => out.push(c),
                    _ => {}
                }
            }
            out
        };
        let wanted = shape(template);
        let method = method.to_ascii_lowercase();
        self.root.get("paths")?.as_object()?.iter().find_map(|(path, ops)| {
            (!path.contains('#') && shape(path) == wanted && ops.get(&method).is_some()).then_some(path.as_str())
        })
    }

    /// Whether the spec's texts name `code` (written `` `code` ``), as its operations do for
    /// the specific error codes they answer with.
    pub fn documents_code(&self, code: &str) -> bool {
        self.quoted_words
            .get_or_init(|| {
                let mut words = HashSet::new();
                collect_quoted(&self.root, &mut words);
                words
            })
            .contains(code)
    }

    /// `load()`, cached for the whole process: the spec is 1.7 MB, so it is parsed only once.
    pub fn shared() -> Option<&'static Spec> {
        static SHARED: OnceLock<Option<Spec>> = OnceLock::new();
        SHARED.get_or_init(Spec::load).as_ref()
    }

    /// The `application/json` response schema of an operation, such as
    /// `("get", "/folders/{folder_id}/items", 200)`. `path` must be a key of
    /// the spec's `paths`. There is no fallback to the `default` response:
    /// the result is `None` when that exact status has no JSON schema.
    pub fn response_schema(&self, method: &str, path: &str, status: u16) -> Option<&Value> {
        self.root
            .get("paths")?
            .get(path)?
            .get(method.to_ascii_lowercase())?
            .get("responses")?
            .get(status.to_string())?
            .get("content")?
            .get("application/json")?
            .get("schema")
    }

    /// Validates `body` against the response schema of an operation and
    /// status. Each violation is reported as `"<json pointer>: <problem>"`.
    /// Panics if the spec declares no such schema, so that a test can never
    /// pass by validating against nothing.
    pub fn validate_response(&self, method: &str, path: &str, status: u16, body: &Value) -> Result<(), Vec<String>> {
        let schema = self.response_schema(method, path, status).unwrap_or_else(|| {
            panic!("spec has no application/json schema for {} {path} -> {status}", method.to_ascii_uppercase())
        });
        self.validate(schema, body)
    }

    /// Validates `body` against a named component schema, such as `"File--Full"`.
    /// Panics if there is no such component.
    pub fn validate_component(&self, name: &str, body: &Value) -> Result<(), Vec<String>> {
        let schema = self
            .root
            .get("components")
            .and_then(|c| c.get("schemas"))
            .and_then(|s| s.get(name))
            .unwrap_or_else(|| panic!("spec has no component schema {name:?}"));
        self.validate(schema, body)
    }

    fn validate(&self, schema: &Value, body: &Value) -> Result<(), Vec<String>> {
        let mut v = Validator { root: &self.root, active: HashSet::new() };
        let mut errors = Vec::new();
        v.check(schema, body, "", &mut errors);
        // allOf and nested compositions can report the same violation twice.
        let mut seen = HashSet::new();
        errors.retain(|e| seen.insert(e.clone()));
        if errors.is_empty() {
            Ok(())
        } else {
            Err(errors)
        }
    }
}

struct Validator<'a> {
    root: &'a Value,
    /// `$ref`s currently being expanded at each instance location. Recursion
    /// driven by the data always ends. This only stops a cycle that never
    /// moves deeper into the data (such as `A: {allOf: [{$ref: A}]}`).
    active: HashSet<(&'a str, String)>,
}

impl<'a> Validator<'a> {
    fn check(&mut self, schema: &'a Value, value: &Value, path: &str, errs: &mut Vec<String>) {
        // `true`, `{}` and non-object schemas accept anything.
        // (`additionalProperties: false` is handled by `check_object`.)
        let Some(s) = schema.as_object() else { return };

        if let Some(r) = s.get("$ref").and_then(Value::as_str) {
            // In OpenAPI 3.0, the siblings of `$ref` are ignored.
            let Some(target) = r.strip_prefix('#').and_then(|p| self.root.pointer(p)) else {
                fail(errs, path, format!("unresolvable $ref {r}"));
                return;
            };
            let key = (r, path.to_owned());
            if self.active.insert(key.clone()) {
                self.check(target, value, path, errs);
                self.active.remove(&key);
            }
            return;
        }

        if value.is_null() && nullable(s) {
            return;
        }
        if let Some(t) = s.get("type").and_then(Value::as_str) {
            if !type_matches(t, value) {
                fail(errs, path, format!("expected {t}, got {}", type_name(value)));
                return; // The remaining keywords would only repeat the same problem.
            }
        }
        if let Some(Value::Array(all)) = s.get("allOf") {
            for branch in all {
                self.check(branch, value, path, errs);
            }
        }
        for key in ["oneOf", "anyOf"] {
            if let Some(Value::Array(branches)) = s.get(key) {
                self.check_alternatives(key, s, branches, value, path, errs);
            }
        }
        if let Some(Value::Array(allowed)) = s.get("enum") {
            if !allowed.contains(value) {
                fail(errs, path, format!("{value} is not one of {}", s["enum"]));
            }
        }

        let bound = |k: &str| s.get(k).and_then(Value::as_f64);
        let mut limits = |what: &str, n: f64, min: &str, max: &str| {
            if let Some(m) = bound(min).filter(|&m| n < m) {
                fail(errs, path, format!("{what} {n} is below {min} {m}"));
            }
            if let Some(m) = bound(max).filter(|&m| n > m) {
                fail(errs, path, format!("{what} {n} is above {max} {m}"));
            }
        };
        match value {
            Value::String(text) => {
                let len = text.chars().count() as f64;
                limits("length", len, "minLength", "maxLength");
                if s.get("format").and_then(Value::as_str) == Some("date-time") && !is_rfc3339(text) {
                    fail(errs, path, format!("{text:?} is not an RFC 3339 date-time"));
                }
            }
            Value::Number(n) => {
                let x = n.as_f64().unwrap_or(f64::NAN);
                limits("value", x, "minimum", "maximum");
                // Integer formats only constrain integral numbers; where it matters,
                // `type: integer` has already rejected the others.
                let fits = match s.get("format").and_then(Value::as_str) {
                    Some("int64") => n.as_i64().is_some(),
                    Some("int32") => n.as_i64().is_some_and(|i| i32::try_from(i).is_ok()),
                    _ => true,
                };
                if !fits && !n.is_f64() {
                    fail(errs, path, format!("{n} does not fit {}", s["format"]));
                }
            }
            Value::Array(items) => {
                limits("item count", items.len() as f64, "minItems", "maxItems");
                if s.get("uniqueItems") == Some(&Value::Bool(true))
                    && items.iter().enumerate().any(|(i, x)| items[..i].contains(x))
                {
                    fail(errs, path, "items are not unique".into());
                }
                if let Some(item_schema) = s.get("items") {
                    for (i, item) in items.iter().enumerate() {
                        self.check(item_schema, item, &format!("{path}/{i}"), errs);
                    }
                }
            }
            Value::Object(map) => self.check_object(s, map, path, errs),
            Value::Bool(_) | Value::Null => {}
        }
    }

    fn check_object(
        &mut self,
        s: &'a Map<String, Value>,
        map: &Map<String, Value>,
        path: &str,
        errs: &mut Vec<String>,
    ) {
        if let Some(Value::Array(required)) = s.get("required") {
            for name in required.iter().filter_map(Value::as_str) {
                if !map.contains_key(name) {
                    fail(errs, path, format!("missing required property `{name}`"));
                }
            }
        }
        let props = s.get("properties").and_then(Value::as_object);
        for (name, child) in map {
            let child_path = format!("{path}/{}", name.replace('~', "~0").replace('/', "~1"));
            match (props.and_then(|p| p.get(name)), s.get("additionalProperties")) {
                (Some(prop), _) => self.check(prop, child, &child_path, errs),
                (None, Some(Value::Bool(false))) => {
                    errs.push(format!("{child_path}: unexpected property (additionalProperties is false)"))
                }
                (None, Some(extra)) => self.check(extra, child, &child_path, errs),
                (None, None) => {}
            }
        }
    }

    /// `oneOf`/`anyOf`. With a `discriminator`, only the branch it names is checked.
    /// Otherwise both are treated as `anyOf`: Box's objects are open (extra
    /// properties allowed), so a body can easily match several `oneOf` branches, and
    /// strict "exactly one" semantics would reject valid responses. When no branch
    /// matches, the errors of the closest branch are reported.
    fn check_alternatives(
        &mut self,
        key: &str,
        s: &'a Map<String, Value>,
        branches: &'a [Value],
        value: &Value,
        path: &str,
        errs: &mut Vec<String>,
    ) {
        if let Some(d) = s.get("discriminator") {
            let prop = d.get("propertyName").and_then(Value::as_str).unwrap_or("type");
            if let Some(tag) = value.get(prop).and_then(Value::as_str) {
                let target = match d.get("mapping").and_then(|m| m.get(tag)).and_then(Value::as_str) {
                    Some(t) if t.starts_with('#') => t.to_owned(),
                    Some(name) => format!("#/components/schemas/{name}"),
                    None => format!("#/components/schemas/{tag}"),
                };
                match branches.iter().find(|b| b.get("$ref").and_then(Value::as_str) == Some(&target)) {
                    Some(branch) => self.check(branch, value, path, errs),
                    None => fail(errs, &format!("{path}/{prop}"), format!("unknown discriminator {tag:?}")),
                }
                return;
            }
        }
        // Rank the failures: a branch whose own `type` tag matched beats one that
        // rejected the tag, and then fewer errors win.
        let type_path = format!("{path}/type:");
        let rank = |e: &[String]| (e.iter().any(|m| m.starts_with(&type_path)), e.len());
        let mut best: Option<(usize, Vec<String>)> = None;
        for (i, branch) in branches.iter().enumerate() {
            let mut e = Vec::new();
            self.check(branch, value, path, &mut e);
            if e.is_empty() {
                return;
            }
            if best.as_ref().is_none_or(|(_, b)| rank(&e) < rank(b)) {
                best = Some((i, e));
            }
        }
        if let Some((i, e)) = best {
            let name = branches[i]
                .get("$ref")
                .and_then(Value::as_str)
                .map_or(format!("#{i}"), |r| r.replace("#/components/schemas/", ""));
            fail(errs, path, format!("matches no {key} branch; closest is {name}:"));
            errs.extend(e);
        }
    }
}

/// `nullable: true` on the node itself or on one of its direct `allOf` branches (see the module docs).
fn nullable(s: &Map<String, Value>) -> bool {
    let is_nullable = |m: &Map<String, Value>| m.get("nullable") == Some(&Value::Bool(true));
    is_nullable(s)
        || s.get("allOf")
            .and_then(Value::as_array)
            .is_some_and(|all| all.iter().filter_map(Value::as_object).any(is_nullable))
}

fn type_matches(t: &str, v: &Value) -> bool {
    match t {
        "object" => v.is_object(),
        "array" => v.is_array(),
        "string" => v.is_string(),
        "boolean" => v.is_boolean(),
        "number" => v.is_number(),
        "integer" => v.is_i64() || v.is_u64(),
        _ => true, // Unknown type names are not this validator's concern.
    }
}

fn type_name(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "boolean",
        Value::Number(n) if n.is_f64() => "number",
        Value::Number(_) => "integer",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}

/// Every `` `word` `` in the string values under `v`.
fn collect_quoted(v: &Value, out: &mut HashSet<String>) {
    match v {
        Value::String(s) => {
            for (i, part) in s.split('`').enumerate() {
                if i % 2 == 1 && !part.is_empty() && part.len() < 80 {
                    out.insert(part.to_string());
                }
            }
        }
        Value::Array(items) => items.iter().for_each(|x| collect_quoted(x, out)),
        Value::Object(map) => map.values().for_each(|x| collect_quoted(x, out)),
        _ => {}
    }
}

/// Records a violation at a JSON-pointer location.
fn fail(errs: &mut Vec<String>, path: &str, msg: String) {
    errs.push(format!("{}: {msg}", show(path)));
}

fn show(path: &str) -> &str {
    if path.is_empty() {
        "(root)"
    } else {
        path
    }
}

/// The decimal value of `b[r]` if every byte in it is an ASCII digit.
fn digits(b: &[u8], r: Range<usize>) -> Option<u32> {
    let d = b.get(r)?;
    d.iter().all(u8::is_ascii_digit).then(|| d.iter().fold(0, |a, c| a * 10 + u32::from(c - b'0')))
}

/// RFC 3339 `date-time`: `YYYY-MM-DDTHH:MM:SS[.frac](Z|±HH:MM)`, with the calendar checked.
fn is_rfc3339(s: &str) -> bool {
    let b = s.as_bytes();
    // The separators of `YYYY-MM-DDTHH:MM:SS`; the digits are checked next.
    let sep = |i: usize, allowed: &[u8]| b.get(i).is_some_and(|c| allowed.contains(c));
    if !(sep(4, b"-") && sep(7, b"-") && sep(10, b"Tt") && sep(13, b":") && sep(16, b":")) {
        return false;
    }
    let fields = [0..4, 5..7, 8..10, 11..13, 14..16, 17..19].map(|r| digits(b, r));
    let [Some(y), Some(mo), Some(d), Some(h), Some(mi), Some(sec)] = fields else {
        return false;
    };
    let month_days = match mo {
        2 if y % 4 == 0 && (y % 100 != 0 || y % 400 == 0) => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        1..=12 => 31,
        _ => return false,
    };
    // A second of 60 is a leap second.
    if d == 0 || d > month_days || h > 23 || mi > 59 || sec > 60 {
        return false;
    }
    let mut rest = &b[19..];
    if let Some(frac) = rest.strip_prefix(b".") {
        let n = frac.iter().take_while(|c| c.is_ascii_digit()).count();
        if n == 0 {
            return false;
        }
        rest = &frac[n..];
    }
    match rest {
        [b'Z' | b'z'] => true,
        [b'+' | b'-', _, _, b':', _, _] => {
            digits(rest, 1..3).is_some_and(|oh| oh <= 23) && digits(rest, 4..6).is_some_and(|om| om <= 59)
        }
        _ => false,
    }
}
