//! The trash as `.box/trash/` shows it, from one listing of Box's trash: trashed files and
//! folders (web links are left out), each under the trashed folder it was deleted from when
//! that folder is in the trash too (`rm -r` deletes a folder's files before the folder), else
//! at the top. Names clash only within one folder of the view ([`trash_names`]).

use super::names::trash_names;
use crate::vfs::meta::inode::Meta;
use boxfs_api::model::Item;
use std::collections::{HashMap, HashSet};
use std::time::{Instant, SystemTime};

/// A trashed item as shown.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TrashEntry {
    pub id: String,
    pub folder: bool,
    /// The name shown (the item's, or with its id when another has it).
    pub name: String,
    pub size: u64,
    pub mtime: SystemTime,
}

/// The trash, by the trashed folder each item is shown in (`None`: the top).
#[derive(Debug)]
pub struct TrashView {
    pub fetched: Instant,
    folders: HashMap<Option<String>, Vec<TrashEntry>>,
}

impl TrashView {
    /// The view of Box's trash listing `items`, fetched at `fetched`.
    pub fn new(items: &[Item], fetched: Instant) -> TrashView {
        let shown: Vec<&Item> = items.iter().filter(|i| !matches!(i, Item::WebLink(_))).collect();
        let folders: HashSet<&str> = shown.iter().filter(|i| matches!(i, Item::Folder(_))).map(|i| i.id()).collect();
        let home = |i: &Item| {
            let parent = i.common().parent.as_ref().map(|p| p.id.as_str());
            parent.filter(|p| folders.contains(p)).map(str::to_string)
        };
        let mut grouped: HashMap<Option<String>, Vec<&Item>> = HashMap::new();
        for item in shown {
            grouped.entry(home(item)).or_default().push(item);
        }
        let folders = grouped.into_iter().map(|(home, items)| (home, entries(&items))).collect();
        TrashView { fetched, folders }
    }

    /// The items shown in trashed folder `folder` (`None`: at the top).
    pub fn children(&self, folder: Option<&str>) -> &[TrashEntry] {
        self.folders.get(&folder.map(str::to_string)).map_or(&[], Vec::as_slice)
    }

    /// The item shown as `name` in `folder`.
    pub fn find(&self, folder: Option<&str>, name: &str) -> Option<&TrashEntry> {
        self.children(folder).iter().find(|e| e.name == name)
    }

    /// This view without item `id` and what is shown inside it (restored or purged).
    pub fn without(&self, id: &str) -> TrashView {
        let mut gone = HashSet::from([id.to_string()]);
        let mut queue = vec![id.to_string()];
        while let Some(folder) = queue.pop() {
            for child in self.children(Some(&folder)) {
                gone.insert(child.id.clone());
                queue.push(child.id.clone());
            }
        }
        let folders = self
            .folders
            .iter()
            .filter(|(home, _)| home.as_ref().is_none_or(|h| !gone.contains(h)))
            .map(|(home, list)| (home.clone(), list.iter().filter(|e| !gone.contains(&e.id)).cloned().collect()))
            .collect();
        TrashView { fetched: self.fetched, folders }
    }
}

/// The entries of one folder of the view, named, sorted by name.
fn entries(items: &[&Item]) -> Vec<TrashEntry> {
    let names = trash_names(items.iter().map(|i| (i.name(), i.id())));
    let mut out: Vec<TrashEntry> = items
        .iter()
        .zip(names)
        .map(|(item, name)| {
            let meta = Meta::from_item(item);
            TrashEntry {
                id: item.id().to_string(),
                folder: matches!(item, Item::Folder(_)),
                name,
                size: meta.size,
                mtime: meta.mtime,
            }
        })
        .collect();
    out.sort_by(|a, b| a.name.cmp(&b.name));
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use boxfs_api::model::{File, Folder, FolderMini, ItemCommon};

    fn common(id: &str, name: &str, parent: &str) -> ItemCommon {
        let parent = Some(FolderMini { id: parent.into(), name: String::new() });
        ItemCommon { id: id.into(), name: name.into(), parent, ..ItemCommon::default() }
    }

    fn file(id: &str, name: &str, parent: &str) -> Item {
        Item::File(File { common: common(id, name, parent), sha1: None, file_version: None, lock: None })
    }

    fn folder(id: &str, name: &str, parent: &str) -> Item {
        Item::Folder(Folder { common: common(id, name, parent) })
    }

    #[test]
    fn items_deleted_out_of_a_trashed_folder_show_inside_it() {
        let items = [
            file("11", "a.txt", "10"),
            file("12", "b.txt", "10"),
            folder("10", "proj", "0"),
            file("20", "proj", "0"),
            file("30", "loose.txt", "5"),
        ];
        let view = TrashView::new(&items, Instant::now());
        let top: Vec<&str> = view.children(None).iter().map(|e| e.name.as_str()).collect();
        assert_eq!(top, ["loose.txt", "proj (id 10)", "proj (id 20)"]);
        let inside: Vec<&str> = view.children(Some("10")).iter().map(|e| e.name.as_str()).collect();
        assert_eq!(inside, ["a.txt", "b.txt"]);
        assert_eq!(view.find(Some("10"), "b.txt").map(|e| e.id.as_str()), Some("12"));
        let after = view.without("10");
        assert!(after.children(Some("10")).is_empty());
        assert_eq!(after.children(None).len(), 2);
    }
}
