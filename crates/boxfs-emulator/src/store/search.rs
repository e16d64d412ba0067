//! `GET /search` over the store: a query (words, `"exact phrases"`, `AND`, `OR`, `NOT`) matched
//! case-insensitively as substrings of names and descriptions, and Box's filters (type,
//! extensions, ancestor folders, date and size ranges, owners, trash, one metadata filter),
//! ranked by relevance (matches in the name first) or by `modified_at`. The emulator indexes no
//! file contents, comments or tags, so those content types match nothing.

use super::item::{item_from_row, Item, Kind, ITEM_COLUMNS};
use super::{Store, StoreError, StoreResult};
use serde_json::{Map, Value};
use std::collections::{HashMap, HashSet};

/// Which parts of an item a query is matched against (`content_types`).
#[derive(Clone, Copy, Debug, Default)]
pub struct Searched {
    pub name: bool,
    pub description: bool,
}

/// One term of a query: a word or a quoted phrase, possibly negated.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Term {
    text: String,
    negated: bool,
}

/// A parsed query: alternatives (`OR`) of terms that must all hold (implicit `AND`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Query(Vec<Vec<Term>>);

impl Query {
    pub fn parse(q: &str) -> Option<Query> {
        let mut groups = vec![Vec::new()];
        let mut negate = false;
        let mut rest = q.trim();
        while !rest.is_empty() {
            let (token, quoted, after) = if let Some(r) = rest.strip_prefix('"') {
                match r.find('"') {
                    Some(end) => (&r[..end], true, &r[end + 1..]),
                    None => (r, true, ""),
                }
            } else {
                let end = rest.find(char::is_whitespace).unwrap_or(rest.len());
                (&rest[..end], false, &rest[end..])
            };
            rest = after.trim_start();
            match (token, quoted) {
                ("AND", false) => {}
                ("OR", false) => groups.push(Vec::new()),
                ("NOT", false) => negate = true,
                (t, _) if t.trim().is_empty() => {}
                (t, _) => {
                    let term = Term { text: t.to_lowercase(), negated: negate };
                    groups.last_mut().expect("a group").push(term);
                    negate = false;
                }
            }
        }
        groups.retain(|g| !g.is_empty());
        (!groups.is_empty()).then_some(Query(groups))
    }

    /// The relevance of an item whose searched fields are `name` and `description`
    /// (lowercase), or `None` when it does not match.
    fn score(&self, name: &str, description: &str) -> Option<u32> {
        let mut best = None;
        for group in &self.0 {
            let mut score = 0;
            let holds = group.iter().all(|t| {
                let in_name = name.contains(&t.text);
                let found = in_name || description.contains(&t.text);
                if found && !t.negated {
                    score += if name == t.text {
                        4
                    } else if in_name {
                        2
                    } else {
                        1
                    };
                }
                found != t.negated
            });
            if holds {
                best = best.max(Some(score));
            }
        }
        best
    }
}

/// `trash_content`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum TrashFilter {
    #[default]
    NonTrashedOnly,
    TrashedOnly,
    AllItems,
}

/// An inclusive range; either end open.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Range<T> {
    pub from: Option<T>,
    pub to: Option<T>,
}

impl<T: PartialOrd + Copy> Range<T> {
    fn holds(&self, v: Option<T>) -> bool {
        match v {
            Some(v) => self.from.is_none_or(|f| v >= f) && self.to.is_none_or(|t| v <= t),
            None => self.from.is_none() && self.to.is_none(),
        }
    }
}

/// `mdfilters` (Box takes exactly one): the template and the values its fields must have.
#[derive(Clone, Debug)]
pub struct MetadataFilter {
    pub scope: String,
    pub template: String,
    pub filters: Map<String, Value>,
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum SearchOrder {
    #[default]
    Relevance,
    ModifiedAt,
}

#[derive(Clone, Debug, Default)]
pub struct SearchRequest {
    pub query: Option<Query>,
    pub searched: Searched,
    pub kind: Option<Kind>,
    /// Lowercase, without the dot.
    pub extensions: Vec<String>,
    pub ancestors: Vec<i64>,
    /// Unix seconds.
    pub created: Range<i64>,
    pub updated: Range<i64>,
    pub deleted: Range<i64>,
    pub size: Range<i64>,
    pub owners: Option<Vec<String>>,
    pub updaters: Option<Vec<String>>,
    pub deleters: Option<Vec<String>>,
    pub trash: TrashFilter,
    pub metadata: Option<MetadataFilter>,
    pub order: SearchOrder,
    pub ascending: bool,
    pub offset: usize,
    pub limit: usize,
}

pub struct SearchPage {
    pub entries: Vec<Item>,
    pub total_count: usize,
}

fn unix(t: Option<&str>) -> Option<i64> {
    t.and_then(|t| chrono::DateTime::parse_from_rfc3339(t).ok()).map(|t| t.timestamp())
}

fn extension(name: &str) -> Option<String> {
    name.rsplit_once('.').filter(|(stem, _)| !stem.is_empty()).map(|(_, ext)| ext.to_lowercase())
}

/// Whether one metadata field value satisfies a filter value (equality, any of a list, or an
/// inclusive `{gt, lt}` range of numbers or dates).
fn field_matches(actual: &Value, wanted: &Value) -> bool {
    let values: Vec<&Value> = match actual {
        Value::Array(items) => items.iter().collect(),
        v => vec![v],
    };
    match wanted {
        Value::Array(any) => any.iter().any(|w| values.contains(&w)),
        Value::Object(range) => {
            let bound = |k: &str| range.get(k).filter(|v| !v.is_null());
            values.iter().any(|v| within(v, bound("gt"), bound("lt")))
        }
        w => values.contains(&w),
    }
}

fn within(v: &Value, low: Option<&Value>, high: Option<&Value>) -> bool {
    let num = |x: &Value| x.as_f64();
    let date = |x: &Value| unix(x.as_str());
    if low.is_none() && high.is_none() {
        return true;
    }
    let check = |key: &dyn Fn(&Value) -> Option<f64>| {
        let Some(x) = key(v) else { return false };
        low.is_none_or(|l| key(l).is_some_and(|l| x >= l)) && high.is_none_or(|h| key(h).is_some_and(|h| x <= h))
    };
    check(&num) || check(&|x| date(x).map(|d| d as f64))
}

impl Store {
    /// What `viewer` finds: items they own or see through a collaboration.
    pub fn search(&self, viewer: &super::Viewer, req: &SearchRequest) -> StoreResult<SearchPage> {
        self.read(|conn| {
            let users = super::users::all_users(conn)?;
            let owner_of = |item: &Item| users.iter().find(|u| u.root_id == item.root_id).map(|u| u.id.as_str());
            let ancestor_folders = descendant_folders(conn, &req.ancestors)?;
            let metadata = match &req.metadata {
                Some(f) => Some(metadata_of(conn, f)?),
                None => None,
            };
            let status = match req.trash {
                TrashFilter::NonTrashedOnly => "status = 'active'",
                TrashFilter::TrashedOnly => "status = 'trashed'",
                TrashFilter::AllItems => "status IN ('active', 'trashed')",
            };
            let mut stmt =
                conn.prepare(&format!("SELECT {ITEM_COLUMNS} FROM items WHERE parent_id IS NOT NULL AND {status}"))?;
            let rows = stmt.query_map([], item_from_row)?;
            let listed = |ids: &Option<Vec<String>>, user: Option<&str>| {
                ids.as_ref().is_none_or(|ids| user.is_some_and(|u| ids.iter().any(|i| i == u)))
            };
            let mut hits: Vec<(u32, Item)> = Vec::new();
            for item in rows {
                let item = item?;
                let owner = owner_of(&item);
                // Who changed or deleted an item is not recorded: its owner stands for them.
                let people_match = listed(&req.owners, owner)
                    && listed(&req.updaters, owner)
                    && (req.deleters.is_none() || req.trash == TrashFilter::TrashedOnly)
                    && listed(&req.deleters, owner);
                if !people_match || req.kind.is_some_and(|k| k != item.kind) {
                    continue;
                }
                let own = item.root_id == viewer.user.root_id;
                let shared = item.status == super::item::Status::Active && viewer.collaborates();
                if !(own || shared && super::access::access(conn, viewer, &item).is_ok()) {
                    continue;
                }
                if !req.extensions.is_empty()
                    && (item.kind != Kind::File || extension(&item.name).is_none_or(|e| !req.extensions.contains(&e)))
                {
                    continue;
                }
                if let Some(folders) = &ancestor_folders {
                    if item.parent_id.is_none_or(|p| !folders.contains(&p)) {
                        continue;
                    }
                }
                let size = (item.kind != Kind::WebLink).then_some(item.size);
                if !req.created.holds(unix(item.created_at.as_deref()))
                    || !req.updated.holds(unix(item.modified_at.as_deref()))
                    || !req.deleted.holds(unix(item.trashed_at.as_deref()))
                    || !req.size.holds(size)
                {
                    continue;
                }
                if let (Some(filter), Some(instances)) = (&req.metadata, &metadata) {
                    let Some(data) = instances.get(&item.id) else { continue };
                    let all = filter.filters.iter().all(|(k, w)| data.get(k).is_some_and(|a| field_matches(a, w)));
                    if !all {
                        continue;
                    }
                }
                let score = match &req.query {
                    None => 0,
                    Some(q) => {
                        let name = if req.searched.name { item.name.to_lowercase() } else { String::new() };
                        let description =
                            if req.searched.description { item.description.to_lowercase() } else { String::new() };
                        match q.score(&name, &description) {
                            Some(s) => s,
                            None => continue,
                        }
                    }
                };
                hits.push((score, item));
            }
            let modified = |i: &Item| i.modified_at.clone().unwrap_or_default();
            match req.order {
                SearchOrder::Relevance => hits
                    .sort_by(|(sa, a), (sb, b)| sb.cmp(sa).then(modified(b).cmp(&modified(a))).then(a.id.cmp(&b.id))),
                SearchOrder::ModifiedAt => hits.sort_by(|(_, a), (_, b)| {
                    let by_date = modified(a).cmp(&modified(b)).then(a.id.cmp(&b.id));
                    if req.ascending {
                        by_date
                    } else {
                        by_date.reverse()
                    }
                }),
            }
            let total_count = hits.len();
            let entries = hits.into_iter().skip(req.offset).take(req.limit).map(|(_, i)| i).collect();
            Ok(SearchPage { entries, total_count })
        })
    }
}

/// The folders whose children are within `ancestors` (the ancestors and every folder below
/// them), or `None` when no ancestor is given. An ancestor that is not an active folder is not
/// found.
fn descendant_folders(conn: &rusqlite::Connection, ancestors: &[i64]) -> StoreResult<Option<HashSet<i64>>> {
    if ancestors.is_empty() {
        return Ok(None);
    }
    let mut out = HashSet::new();
    let mut stmt = conn.prepare_cached(
        "WITH RECURSIVE sub(id) AS (SELECT ?1 UNION ALL
             SELECT i.id FROM items i JOIN sub ON i.parent_id = sub.id WHERE i.kind = 'folder')
         SELECT id FROM sub",
    )?;
    for &a in ancestors {
        super::item::load_active(conn, Kind::Folder, a).map_err(|_| StoreError::NotFound { what: "folder" })?;
        for id in stmt.query_map([a], |r| r.get::<_, i64>(0))? {
            out.insert(id?);
        }
    }
    Ok(Some(out))
}

/// The instances of the filter's template, by item id.
fn metadata_of(conn: &rusqlite::Connection, f: &MetadataFilter) -> StoreResult<HashMap<i64, Map<String, Value>>> {
    let scope = if f.scope == "enterprise" { format!("enterprise_{}", super::ENTERPRISE_ID) } else { f.scope.clone() };
    if scope != "global" || f.template != "properties" {
        return Err(StoreError::bad_request(
            "invalid_parameter",
            format!("mdfilters: the metadata template {}.{} was not found", f.scope, f.template),
        ));
    }
    let mut stmt = conn.prepare("SELECT item_id, data FROM metadata_instances WHERE scope = ?1 AND template = ?2")?;
    let rows = stmt.query_map((&scope, &f.template), |r| Ok((r.get::<_, i64>(0)?, r.get::<_, String>(1)?)))?;
    let mut out = HashMap::new();
    for row in rows {
        let (id, data) = row?;
        out.insert(id, serde_json::from_str(&data).unwrap_or_default());
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn queries() {
        let q = |s: &str| Query::parse(s).unwrap();
        assert_eq!(q("report").score("q1 report.txt", ""), Some(2));
        assert_eq!(q("report").score("x", "the report"), Some(1));
        assert_eq!(q("a.txt").score("a.txt", ""), Some(4));
        assert_eq!(q("q1 report").score("q1 report.txt", ""), Some(4));
        assert_eq!(q("q1 AND budget").score("q1 report.txt", ""), None);
        assert_eq!(q("q1 OR budget").score("budget.csv", ""), Some(2));
        assert_eq!(q("report NOT q2").score("q1 report.txt", ""), Some(2));
        assert_eq!(q("report NOT q1").score("q1 report.txt", ""), None);
        assert_eq!(q("\"q1 report\"").score("q1 report.txt", ""), Some(2));
        assert_eq!(q("\"report q1\"").score("q1 report.txt", ""), None);
        assert!(Query::parse("  ").is_none());
    }

    #[test]
    fn metadata_filter_values() {
        assert!(field_matches(&json!("a"), &json!("a")));
        assert!(!field_matches(&json!("a"), &json!("b")));
        assert!(field_matches(&json!(["a", "b"]), &json!("b")));
        assert!(field_matches(&json!("b"), &json!(["a", "b"])));
        assert!(field_matches(&json!(5), &json!({"gt": 1, "lt": 5})));
        assert!(!field_matches(&json!(6), &json!({"gt": 1, "lt": 5})));
        assert!(field_matches(&json!("2024-05-01T00:00:00Z"), &json!({"gt": "2024-01-01T00:00:00Z"})));
        assert!(!field_matches(&json!("2023-05-01T00:00:00Z"), &json!({"gt": "2024-01-01T00:00:00Z"})));
    }

    #[test]
    fn ranges_and_extensions() {
        let r = Range { from: Some(2), to: None };
        assert!(r.holds(Some(2)) && r.holds(Some(9)) && !r.holds(Some(1)) && !r.holds(None));
        assert!(Range::<i64>::default().holds(None));
        assert_eq!(extension("a.TXT").as_deref(), Some("txt"));
        assert_eq!(extension(".bashrc"), None);
        assert_eq!(extension("noext"), None);
    }
}
