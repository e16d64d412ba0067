"""Box's official Python SDK (box-sdk-gen, unmodified) against `boxfs emulator`.

tests/sdk_conformance.rs starts the emulator in-process, runs this suite with
BOXFS_SDK_ORIGIN (the emulator's http://127.0.0.1:PORT), BOXFS_SDK_TOKEN (a developer token)
and BOXFS_SDK_CLIENT_ID / BOXFS_SDK_CLIENT_SECRET (its OAuth client), and afterwards validates
every response the emulator gave against Box's OpenAPI spec. A failure here is a difference
between the emulator and Box: it is fixed in the emulator, never by bending a test.

The SDK is pointed at the emulator the way a new user would do it:
BaseUrls(base_url=ORIGIN, upload_url=ORIGIN + "/api", oauth_2_url=ORIGIN + "/oauth2").
"""

import hashlib
import io
import os
import random
import uuid

import pytest
from box_sdk_gen import (
    BaseUrls,
    BoxAPIError,
    BoxClient,
    BoxDeveloperTokenAuth,
    CreateFolderParent,
    DeveloperTokenConfig,
    UploadFileAttributes,
    UploadFileAttributesParentField,
)

ORIGIN = os.environ["BOXFS_SDK_ORIGIN"]
TOKEN = os.environ["BOXFS_SDK_TOKEN"]
CLIENT_ID = os.environ["BOXFS_SDK_CLIENT_ID"]
CLIENT_SECRET = os.environ["BOXFS_SDK_CLIENT_SECRET"]


def base_urls() -> BaseUrls:
    return BaseUrls(base_url=ORIGIN, upload_url=ORIGIN + "/api", oauth_2_url=ORIGIN + "/oauth2")


def make_client(auth) -> BoxClient:
    return BoxClient(auth=auth).with_custom_base_urls(base_urls())


@pytest.fixture(scope="session")
def client() -> BoxClient:
    config = DeveloperTokenConfig(client_id=CLIENT_ID, client_secret=CLIENT_SECRET)
    return make_client(BoxDeveloperTokenAuth(token=TOKEN, config=config))


@pytest.fixture
def folder(client, request):
    """A fresh folder in the root for one test; deleted recursively afterwards."""
    name = f"{request.node.name} {uuid.uuid4().hex[:8]}"
    created = client.folders.create_folder(name, CreateFolderParent(id="0"))
    yield created
    client.folders.delete_folder_by_id(created.id, recursive=True)


def data(seed: int, size: int) -> bytes:
    """Deterministic test bytes."""
    return random.Random(seed).randbytes(size)


def sha1(b: bytes) -> str:
    return hashlib.sha1(b).hexdigest()


def upload(client, parent_id: str, name: str, content: bytes):
    """A direct upload; returns the new FileFull."""
    attributes = UploadFileAttributes(name=name, parent=UploadFileAttributesParentField(id=parent_id))
    files = client.uploads.upload_file(attributes, io.BytesIO(content))
    assert files.total_count == 1
    return files.entries[0]


def api_error(call) -> BoxAPIError:
    """Runs `call`, which must fail with a Box API error, and returns that error."""
    with pytest.raises(BoxAPIError) as caught:
        call()
    return caught.value


def error_code(err: BoxAPIError) -> str:
    return err.response_info.code
