"""search_for_content: a query on names (and descriptions), ancestor_folder_ids, type,
file_extensions, offset paging, trash, metadata filters and Box's refusals."""

from box_sdk_gen import (
    CreateFileMetadataByIdScope,
    CreateFolderParent,
    MetadataFilter,
    MetadataFilterScopeField,
    SearchForContentContentTypes,
    SearchForContentTrashContent,
    SearchForContentType,
)
from conftest import api_error, error_code, upload


def names(results):
    return sorted(e.name for e in results.entries)


def test_query_filters_and_paging(client, folder):
    a = client.folders.create_folder("quarterly reports", CreateFolderParent(id=folder.id))
    b = client.folders.create_folder("archive", CreateFolderParent(id=folder.id))
    for name in ["Q1 report.pdf", "Q2 report.PDF", "notes.txt"]:
        upload(client, a.id, name, name.encode())
    old = upload(client, b.id, "old report.txt", b"old")
    client.files.update_file_by_id(old.id, description="kept for the auditors")

    found = client.search.search_for_content(query="report", ancestor_folder_ids=[folder.id])
    assert found.type.value == "search_results_items"
    assert names(found) == ["Q1 report.pdf", "Q2 report.PDF", "old report.txt", "quarterly reports"]
    assert names(client.search.search_for_content(query="report", ancestor_folder_ids=[b.id])) == ["old report.txt"]
    only_files = client.search.search_for_content(
        query="report", ancestor_folder_ids=[folder.id], type=SearchForContentType.FILE, file_extensions=["pdf"]
    )
    assert names(only_files) == ["Q1 report.pdf", "Q2 report.PDF"]
    by_description = client.search.search_for_content(
        query="auditors", ancestor_folder_ids=[folder.id], content_types=[SearchForContentContentTypes.DESCRIPTION]
    )
    assert names(by_description) == ["old report.txt"]
    phrase = client.search.search_for_content(query='"q1 report"', ancestor_folder_ids=[folder.id])
    assert names(phrase) == ["Q1 report.pdf"]

    # Offset paging: pages of 2 cover the four results once each.
    paged = []
    for offset in (0, 2, 4):
        page = client.search.search_for_content(query="report", ancestor_folder_ids=[folder.id], limit=2, offset=offset)
        assert page.total_count == 4 and page.limit == 2 and page.offset == offset
        paged += [e.id for e in page.entries]
    assert len(paged) == 4 and len(set(paged)) == 4

    slim = client.search.search_for_content(query="notes", ancestor_folder_ids=[folder.id], fields=["name", "size"])
    assert slim.raw_data["entries"][0].keys() == {"type", "id", "etag", "name", "size"}

    client.files.delete_file_by_id(old.id)
    assert names(client.search.search_for_content(query="old report", ancestor_folder_ids=[folder.id])) == []
    trashed = client.search.search_for_content(
        query="old report", ancestor_folder_ids=[folder.id], trash_content=SearchForContentTrashContent.TRASHED_ONLY
    )
    assert names(trashed) == ["old report.txt"]


def test_metadata_filter(client, folder):
    tagged = upload(client, folder.id, "tagged.bin", b"t")
    upload(client, folder.id, "untagged.bin", b"u")
    client.file_metadata.create_file_metadata_by_id(
        tagged.id, CreateFileMetadataByIdScope.GLOBAL, "properties", {"project": "boxfs"}
    )
    found = client.search.search_for_content(
        ancestor_folder_ids=[folder.id],
        mdfilters=[MetadataFilter(scope=MetadataFilterScopeField.GLOBAL, template_key="properties", filters={"project": "boxfs"})],
    )
    assert [e.id for e in found.entries] == [tagged.id]


def test_refusals(client, folder):
    err = api_error(lambda: client.search.search_for_content(ancestor_folder_ids=[folder.id]))
    assert err.response_info.status_code == 400 and error_code(err) == "missing_parameter"
    err = api_error(lambda: client.search.search_for_content(query="x", ancestor_folder_ids=["999999999"]))
    assert err.response_info.status_code == 404
    err = api_error(lambda: client.search.search_for_content(query="x", offset=10001))
    assert err.response_info.status_code == 400
