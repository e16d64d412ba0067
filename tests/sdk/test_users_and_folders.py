"""Users and folders: get, items with offset and marker paging (2,500 items), create,
update/move, copy, delete recursive or not, and Box's refusals."""

from concurrent.futures import ThreadPoolExecutor

from box_sdk_gen import (
    CopyFolderParent,
    CreateFolderParent,
    GetFolderItemsDirection,
    GetFolderItemsSort,
    UpdateFolderByIdParent,
)
from conftest import api_error, data, error_code, upload


def test_user_me(client):
    me = client.users.get_user_me()
    assert me.type.value == "user" and me.id
    assert me.space_amount > 0 and me.space_used >= 0 and me.max_upload_size > 0
    slim = client.users.get_user_me(fields=["name", "space_used"])
    assert slim.id == me.id and slim.name == me.name
    assert "login" not in slim.raw_data and "space_used" in slim.raw_data


def test_get_folder_and_root(client, folder):
    root = client.folders.get_folder_by_id("0")
    assert root.id == "0" and root.name == "All Files"
    assert any(e.id == folder.id for e in client.folders.get_folder_items("0", limit=1000).entries)
    got = client.folders.get_folder_by_id(folder.id, fields=["name", "path_collection", "item_collection"])
    assert got.name == folder.name
    assert [p.id for p in got.path_collection.entries] == ["0"]
    assert got.item_collection.total_count == 0


def test_paging_2500_items_by_offset_and_marker(client, folder):
    sub = client.folders.create_folder("items", CreateFolderParent(id=folder.id))
    names = [f"f{i:04}" for i in range(2500)]
    with ThreadPoolExecutor(8) as pool:
        list(pool.map(lambda n: client.folders.create_folder(n, CreateFolderParent(id=sub.id)), names[:500]))
        list(pool.map(lambda n: upload(client, sub.id, n + ".txt", n.encode()), names[500:]))

    # Marker paging, 1000 a page.
    seen, marker, pages = [], None, 0
    while True:
        page = client.folders.get_folder_items(sub.id, usemarker=True, marker=marker, limit=1000, fields=["name"])
        pages += 1
        seen += [e.name for e in page.entries]
        marker = page.next_marker
        if not marker:
            break
    assert pages == 3
    expected = names[:500] + [n + ".txt" for n in names[500:]]
    assert seen == expected, "folders first, then files, each by name, none twice"

    # Offset paging: the same order; limit is capped at 1000.
    by_offset, offset = [], 0
    while offset < 2500:
        page = client.folders.get_folder_items(sub.id, offset=offset, limit=5000)
        assert page.total_count == 2500 and page.limit == 1000
        by_offset += [e.name for e in page.entries]
        offset += page.limit
    assert by_offset == expected

    desc = client.folders.get_folder_items(
        sub.id, offset=500, limit=2, sort=GetFolderItemsSort.NAME, direction=GetFolderItemsDirection.DESC
    )
    assert [e.name for e in desc.entries] == ["f2499.txt", "f2498.txt"]


def test_create_update_move_copy(client, folder):
    a = client.folders.create_folder("A", CreateFolderParent(id=folder.id), fields=["name", "parent"])
    assert a.parent.id == folder.id
    b = client.folders.create_folder("B", CreateFolderParent(id=folder.id))
    upload(client, a.id, "inside.txt", data(1, 100))

    renamed = client.folders.update_folder_by_id(a.id, name="A renamed", description="about A")
    assert renamed.name == "A renamed" and renamed.description == "about A"
    assert renamed.etag != a.etag
    moved = client.folders.update_folder_by_id(a.id, parent=UpdateFolderByIdParent(id=b.id), if_match=renamed.etag)
    assert moved.parent.id == b.id
    assert [p.id for p in moved.path_collection.entries] == ["0", folder.id, b.id]
    err = api_error(lambda: client.folders.update_folder_by_id(a.id, name="x", if_match="stale"))
    assert err.response_info.status_code == 412

    # A folder cannot move into itself or below itself.
    err = api_error(lambda: client.folders.update_folder_by_id(b.id, parent=UpdateFolderByIdParent(id=a.id)))
    assert err.response_info.status_code == 400

    copy = client.folders.copy_folder(b.id, CopyFolderParent(id=folder.id), name="B copy")
    assert copy.name == "B copy" and copy.id != b.id
    inner = client.folders.get_folder_items(copy.id).entries
    assert [e.name for e in inner] == ["A renamed"]
    assert copy.size == 100, "the copy holds the file"


def test_delete_recursive_or_not(client, folder):
    full = client.folders.create_folder("full", CreateFolderParent(id=folder.id))
    upload(client, full.id, "x.bin", data(2, 10))
    err = api_error(lambda: client.folders.delete_folder_by_id(full.id))
    assert err.response_info.status_code == 400 and error_code(err) == "folder_not_empty"
    err = api_error(lambda: client.folders.delete_folder_by_id(full.id, recursive=False))
    assert error_code(err) == "folder_not_empty"
    client.folders.delete_folder_by_id(full.id, recursive=True)
    assert error_code(api_error(lambda: client.folders.get_folder_by_id(full.id))) == "trashed"
    empty = client.folders.create_folder("empty", CreateFolderParent(id=folder.id))
    client.folders.delete_folder_by_id(empty.id)


def test_names_and_conflicts(client, folder):
    client.folders.create_folder("Taken", CreateFolderParent(id=folder.id))
    err = api_error(lambda: client.folders.create_folder("taken", CreateFolderParent(id=folder.id)))
    assert err.response_info.status_code == 409 and error_code(err) == "item_name_in_use"
    assert err.response_info.context_info["conflicts"][0]["name"] == "Taken"
    for bad in ["..", "a/b", "a\\b", "trailing ", "tab\there"]:
        err = api_error(lambda: client.folders.create_folder(bad, CreateFolderParent(id=folder.id)))
        assert err.response_info.status_code == 400 and error_code(err) == "item_name_invalid", bad
    err = api_error(lambda: client.folders.create_folder("x" * 256, CreateFolderParent(id=folder.id)))
    assert error_code(err) == "item_name_too_long"
    err = api_error(lambda: client.folders.get_folder_by_id("999999999"))
    assert err.response_info.status_code == 404 and error_code(err) == "not_found"
