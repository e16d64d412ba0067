"""Files: get with fields and if-none-match, update/move/rename with if-match, copy, delete,
versions (list, get, trash and restore one, promote)."""

import io

from box_sdk_gen import (
    CopyFileParent,
    CreateFolderParent,
    FetchOptions,
    PromoteFileVersionType,
    UpdateFileByIdParent,
    UploadFileVersionAttributes,
)
from box_sdk_gen.internal.null_value import null
from conftest import ORIGIN, api_error, data, error_code, sha1, upload


def test_get_with_fields_and_if_none_match(client, folder):
    content = data(10, 1234)
    f = upload(client, folder.id, "report.txt", content)
    assert f.sha_1 == sha1(content) and f.size == 1234 and f.extension == "txt"
    got = client.files.get_file_by_id(f.id)
    assert got.name == "report.txt" and got.parent.id == folder.id
    slim = client.files.get_file_by_id(f.id, fields=["name", "sha1", "permissions", "lock"])
    assert slim.sha_1 == f.sha_1 and slim.permissions.can_download
    assert set(slim.raw_data) == {"type", "id", "etag", "name", "sha1", "permissions", "lock"}

    # A stale etag gets the file; the current one gets 304 Not Modified (asked through the
    # SDK's generic request call: its typed call has nothing to return for a 304).
    assert client.files.get_file_by_id(f.id, if_none_match="stale").id == f.id
    resp = client.make_request(
        FetchOptions(url=f"{ORIGIN}/2.0/files/{f.id}", method="GET", headers={"if-none-match": got.etag})
    )
    assert resp.status == 304


def test_update_rename_move_with_if_match(client, folder):
    f = upload(client, folder.id, "a.txt", b"a")
    dest = client.folders.create_folder("dest", CreateFolderParent(id=folder.id))
    renamed = client.files.update_file_by_id(f.id, name="b.txt", description="bee", if_match=f.etag)
    assert renamed.name == "b.txt" and renamed.description == "bee" and renamed.etag != f.etag
    err = api_error(lambda: client.files.update_file_by_id(f.id, name="c.txt", if_match=f.etag))
    assert err.response_info.status_code == 412 and error_code(err) == "precondition_failed"
    moved = client.files.update_file_by_id(f.id, parent=UpdateFileByIdParent(id=dest.id), fields=["parent", "name"])
    assert moved.parent.id == dest.id and moved.name == "b.txt"
    upload(client, dest.id, "taken.txt", b"t")
    err = api_error(lambda: client.files.update_file_by_id(f.id, name="TAKEN.txt"))
    assert err.response_info.status_code == 409 and error_code(err) == "item_name_in_use"


def test_copy_and_delete(client, folder):
    content = data(11, 5000)
    f = upload(client, folder.id, "orig.bin", content)
    copy = client.files.copy_file(f.id, CopyFileParent(id=folder.id), name="copy.bin", fields=["name", "sha1"])
    assert copy.name == "copy.bin" and copy.sha_1 == sha1(content) and copy.id != f.id
    assert client.downloads.download_file(copy.id).read() == content
    client.files.delete_file_by_id(copy.id)
    assert error_code(api_error(lambda: client.files.get_file_by_id(copy.id))) == "trashed"
    err = api_error(lambda: client.files.delete_file_by_id(f.id, if_match="stale"))
    assert err.response_info.status_code == 412


def test_versions_and_promote(client, folder):
    v1, v2, v3 = data(1, 100), data(2, 200), data(3, 300)
    f = upload(client, folder.id, "versioned.bin", v1)
    for content in (v2, v3):
        files = client.uploads.upload_file_version(f.id, UploadFileVersionAttributes(name="versioned.bin"), io.BytesIO(content))
        assert files.entries[0].sha_1 == sha1(content)
    versions = client.file_versions.get_file_versions(f.id)
    assert versions.total_count == 2
    by_size = {v.size: v for v in versions.entries}
    assert set(by_size) == {100, 200}
    first = client.file_versions.get_file_version_by_id(f.id, by_size[100].id)
    assert first.sha_1 == sha1(v1)

    # Trash an old version and bring it back.
    client.file_versions.delete_file_version_by_id(f.id, by_size[200].id)
    trashed = client.file_versions.get_file_version_by_id(f.id, by_size[200].id)
    assert trashed.trashed_at is not None
    restored = client.file_versions.update_file_version_by_id(f.id, by_size[200].id, trashed_at=null)
    assert restored.trashed_at is None

    current = client.file_versions.promote_file_version(f.id, id=by_size[100].id, type=PromoteFileVersionType.FILE_VERSION)
    assert current.sha_1 == sha1(v1)
    assert client.downloads.download_file(f.id).read() == v1
    assert client.files.get_file_by_id(f.id, fields=["version_number"]).version_number == "4"
    old = client.downloads.download_file(f.id, version=by_size[200].id).read()
    assert old == v2
