"""msgspec Structs for the API: the objects we serve and their codecs, and the pieces request
bodies share with them (the bodies themselves: requests.py).

Field order of the response Structs is the canonical line format: a message line written by
Threadline is exactly `encode(Message)`, so such a line can be served as stored bytes.
Request bodies forbid unknown fields; limits live in the types so validation is declared once.
"""

from __future__ import annotations

from typing import Annotated, Literal

import msgspec
from msgspec import UNSET, Meta, Struct, UnsetType

# --- shared pieces -------------------------------------------------------------------------------

MetadataKey = Annotated[str, Meta(max_length=64)]
MetadataValue = Annotated[str, Meta(max_length=512)]
Metadata = Annotated[dict[MetadataKey, MetadataValue], Meta(max_length=16)]
# A modify's metadata: the same limits, checked against what the object is served with
# (repo/base.py `check_metadata`), since what Jan wrote may be past them and is sent back.
ModifiedMetadata = Annotated[
    dict[Annotated[str, Meta(extra_json_schema={"maxLength": 64})],
         Annotated[str, Meta(extra_json_schema={"maxLength": 512})]],
    Meta(extra_json_schema={"maxProperties": 16})]
Role = Literal["user", "assistant"]
Status = Literal["in_progress", "incomplete", "completed"]
Detail = Literal["auto", "low", "high"]
IncompleteReason = Literal[
    "content_filter", "max_tokens", "run_cancelled", "run_expired", "run_failed"
]
# Seconds since the epoch. Jan stores milliseconds too, and a stored value over 1e12 is read as
# milliseconds, so a client may not set one that large (it would come back a thousandth).
Timestamp = Annotated[int, Meta(ge=0, le=10**12)]


class CodeInterpreterTool(Struct, kw_only=True, tag_field="type", forbid_unknown_fields=True,
        tag="code_interpreter"):
    pass


class FileSearchTool(Struct, kw_only=True, tag_field="type", forbid_unknown_fields=True,
        tag="file_search"):
    pass


AttachmentTool = CodeInterpreterTool | FileSearchTool


class Attachment(Struct, kw_only=True, forbid_unknown_fields=True):
    file_id: Annotated[str, Meta(min_length=1, max_length=256)]
    tools: list[AttachmentTool] = msgspec.field(default_factory=list)


class CodeInterpreterResources(Struct, kw_only=True, forbid_unknown_fields=True):
    file_ids: Annotated[list[str], Meta(max_length=20)] = msgspec.field(default_factory=list)


class FileSearchResources(Struct, kw_only=True, forbid_unknown_fields=True, omit_defaults=True):
    vector_store_ids: Annotated[list[str], Meta(max_length=1)] = msgspec.field(
        default_factory=list
    )


class ToolResources(Struct, kw_only=True, forbid_unknown_fields=True, omit_defaults=True):
    code_interpreter: CodeInterpreterResources | UnsetType = UNSET
    file_search: FileSearchResources | UnsetType = UNSET


class ImageFile(Struct, kw_only=True, forbid_unknown_fields=True, omit_defaults=True):
    file_id: Annotated[str, Meta(min_length=1)]
    detail: Detail | UnsetType = UNSET


class ImageUrl(Struct, kw_only=True, forbid_unknown_fields=True, omit_defaults=True):
    url: Annotated[str, Meta(min_length=1)]  # a URI once stored (requests.output_content)
    detail: Detail | UnsetType = UNSET


class ImageFilePart(Struct, kw_only=True, tag_field="type", forbid_unknown_fields=True,
        tag="image_file"):
    image_file: ImageFile


class ImageUrlPart(Struct, kw_only=True, tag_field="type", forbid_unknown_fields=True,
        tag="image_url"):
    image_url: ImageUrl


class IncompleteDetails(Struct, kw_only=True):
    reason: IncompleteReason


# --- served objects ------------------------------------------------------------------------------


class FileRef(Struct, kw_only=True):
    file_id: str


class FileCitationAnnotation(Struct, kw_only=True, tag_field="type", tag="file_citation"):
    text: str
    file_citation: FileRef
    start_index: Annotated[int, Meta(ge=0)]
    end_index: Annotated[int, Meta(ge=0)]


class FilePathAnnotation(Struct, kw_only=True, tag_field="type", tag="file_path"):
    text: str
    file_path: FileRef
    start_index: Annotated[int, Meta(ge=0)]
    end_index: Annotated[int, Meta(ge=0)]


# Typed, not free dicts: the SDK validates annotations strictly, so a stored line with any other
# annotation must not pass as canonical (normalize drops what does not fit).
TextAnnotation = FileCitationAnnotation | FilePathAnnotation


class TextValue(Struct, kw_only=True):
    value: str
    annotations: list[TextAnnotation] = msgspec.field(default_factory=list)


class TextPart(Struct, kw_only=True, tag_field="type", tag="text"):
    text: TextValue


class RefusalPart(Struct, kw_only=True, tag_field="type", tag="refusal"):
    refusal: str


ContentPart = TextPart | ImageUrlPart | ImageFilePart | RefusalPart


# Seconds: a stored line with a larger value (Jan's milliseconds) is not canonical.
Seconds = Annotated[int, Meta(ge=0, le=10**12)]


class Message(Struct, kw_only=True):
    """The OpenAI v2 message object; its encoding is the canonical `messages.jsonl` line."""

    id: str
    object: Literal["thread.message"] = "thread.message"
    created_at: Seconds
    thread_id: str
    status: Status = "completed"
    incomplete_details: IncompleteDetails | None = None
    completed_at: Seconds | None = None
    incomplete_at: Seconds | None = None
    role: Role
    content: list[ContentPart]
    assistant_id: str | None = None
    run_id: str | None = None
    attachments: list[Attachment] | None = None
    metadata: dict[str, str] | None = None


class Thread(Struct, kw_only=True):
    id: str
    object: Literal["thread"] = "thread"
    created_at: int
    tool_resources: ToolResources | None = None
    metadata: dict[str, str] | None = None


class DeletedThread(Struct, kw_only=True):
    id: str
    object: Literal["thread.deleted"] = "thread.deleted"
    deleted: bool = True


class DeletedMessage(Struct, kw_only=True):
    id: str
    object: Literal["thread.message.deleted"] = "thread.message.deleted"
    deleted: bool = True


class MessageFile(Struct, kw_only=True):
    id: str
    object: Literal["thread.message.file"] = "thread.message.file"
    created_at: int
    message_id: str


class ErrorDetail(Struct, kw_only=True):
    message: str
    type: str
    param: str | None = None
    code: str | None = None


class ErrorBody(Struct, kw_only=True):
    error: ErrorDetail


# Built once: msgspec encoders/decoders are cheap to call and costly to make.
encoder = msgspec.json.Encoder()
message_decoder = msgspec.json.Decoder(Message)


def text_part(value: str) -> TextPart:
    return TextPart(text=TextValue(value=value, annotations=[]))
