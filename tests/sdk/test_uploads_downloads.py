"""Uploads (direct, preflight, new version, chunked upload_big_file of 21 MiB, the chunked
session calls one by one) and downloads (whole, ranged, by version, the download URL), all
byte-exact."""

import hashlib
import io
import base64

import requests
from box_sdk_gen import (
    PreflightFileUploadCheckParent,
    UploadFileAttributes,
    UploadFileAttributesParentField,
    UploadFileVersionAttributes,
)
from conftest import api_error, data, error_code, sha1, upload

MIB = 1024 * 1024


def test_direct_upload_preflight_and_new_version(client, folder):
    ok = client.uploads.preflight_file_upload_check(
        name="new.bin", size=1000, parent=PreflightFileUploadCheckParent(id=folder.id)
    )
    assert ok.upload_url.startswith("http")
    content = data(20, 70_000)
    attributes = UploadFileAttributes(
        name="new.bin",
        parent=UploadFileAttributesParentField(id=folder.id),
        content_modified_at="2024-03-04T05:06:07Z",
    )
    f = client.uploads.upload_file(attributes, io.BytesIO(content), content_md_5=sha1(content)).entries[0]
    assert f.sha_1 == sha1(content) and f.size == len(content)
    assert f.content_modified_at.isoformat().startswith("2024-03-04T05:06:07")

    err = api_error(
        lambda: client.uploads.preflight_file_upload_check(
            name="NEW.bin", size=1, parent=PreflightFileUploadCheckParent(id=folder.id)
        )
    )
    assert err.response_info.status_code == 409 and error_code(err) == "item_name_in_use"
    err = api_error(lambda: upload(client, folder.id, "new.bin", b"again"))
    assert err.response_info.status_code == 409
    other = UploadFileAttributes(name="corrupted.bin", parent=UploadFileAttributesParentField(id=folder.id))
    err = api_error(lambda: client.uploads.upload_file(other, io.BytesIO(b"x"), content_md_5="0" * 40))
    assert err.response_info.status_code == 400 and error_code(err) == "bad_digest"

    newer = data(21, 1000)
    v2 = client.uploads.upload_file_version(
        f.id, UploadFileVersionAttributes(name="renamed.bin"), io.BytesIO(newer), if_match=f.etag
    ).entries[0]
    assert v2.id == f.id and v2.name == "renamed.bin" and v2.sha_1 == sha1(newer)
    err = api_error(
        lambda: client.uploads.upload_file_version(
            f.id, UploadFileVersionAttributes(name="renamed.bin"), io.BytesIO(b"z"), if_match=f.etag
        )
    )
    assert err.response_info.status_code == 412
    assert client.downloads.download_file(f.id).read() == newer


def test_upload_big_file_21_mib_chunked(client, folder):
    content = data(22, 21 * MIB)
    f = client.chunked_uploads.upload_big_file(io.BytesIO(content), "big.bin", len(content), folder.id)
    assert f.size == len(content) and f.sha_1 == sha1(content)
    assert client.downloads.download_file(f.id).read() == content


def test_chunked_session_calls(client, folder):
    existing = upload(client, folder.id, "grows.bin", b"small")
    content = data(23, 20 * MIB + 12345)
    session = client.chunked_uploads.create_file_upload_session_for_existing_file(existing.id, len(content))
    assert session.total_parts == 3 and session.num_parts_processed == 0
    part_size = session.part_size
    parts = []
    for i in range(session.total_parts):
        chunk = content[i * part_size : (i + 1) * part_size]
        digest = "sha=" + base64.b64encode(hashlib.sha1(chunk).digest()).decode()
        content_range = f"bytes {i * part_size}-{i * part_size + len(chunk) - 1}/{len(content)}"
        uploaded = client.chunked_uploads.upload_file_part(session.id, io.BytesIO(chunk), digest, content_range)
        assert uploaded.part.size == len(chunk) and uploaded.part.offset == i * part_size
        parts.append(uploaded.part)
    listed = client.chunked_uploads.get_file_upload_session_parts(session.id)
    assert listed.total_count == 3
    status = client.chunked_uploads.get_file_upload_session_by_id(session.id)
    assert status.num_parts_processed == 3
    whole = "sha=" + base64.b64encode(hashlib.sha1(content).digest()).decode()
    committed = client.chunked_uploads.create_file_upload_session_commit(session.id, parts, whole)
    assert committed.entries[0].id == existing.id and committed.entries[0].sha_1 == sha1(content)

    # A session that is abandoned.
    other = client.chunked_uploads.create_file_upload_session(folder.id, 20 * MIB, "never.bin")
    client.chunked_uploads.delete_file_upload_session_by_id(other.id)
    # Box refuses sessions below its 20 MB minimum.
    err = api_error(lambda: client.chunked_uploads.create_file_upload_session(folder.id, 1000, "tiny.bin"))
    assert err.response_info.status_code == 400 and error_code(err) == "file_size_too_small"


def test_whole_ranged_and_url_downloads(client, folder):
    content = data(24, 3 * MIB + 17)
    f = upload(client, folder.id, "ranged.bin", content)
    assert client.downloads.download_file(f.id).read() == content
    for first, last in [(0, 0), (10, 1009), (MIB - 3, 2 * MIB + 5), (len(content) - 100, len(content) - 1)]:
        got = client.downloads.download_file(f.id, range=f"bytes={first}-{last}").read()
        assert got == content[first : last + 1], (first, last)
    assert client.downloads.download_file(f.id, range="bytes=-50").read() == content[-50:]
    out = io.BytesIO()
    client.downloads.download_file_to_output_stream(f.id, out, range=f"bytes={MIB}-")
    assert out.getvalue() == content[MIB:]

    url = client.downloads.get_download_file_url(f.id)
    plain = requests.get(url, headers={"range": "bytes=5-9"}, timeout=30)
    assert plain.status_code == 206 and plain.content == content[5:10]
    assert requests.get(url, timeout=30).content == content
