"""msgspec Structs for the API: request bodies, the objects we serve, and their codecs.

Field order of the response Structs is the canonical line format: a message line written by
Threadline is exactly `encode(Message)`, so such a line can be served as stored bytes.
Request bodies forbid unknown fields; limits live in the types so validation is declared once.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

import msgspec
from msgspec import UNSET, Meta, Struct, UnsetType

from .uris import as_uri

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


class AutoChunking(Struct, tag_field="type", tag="auto", forbid_unknown_fields=True):
    pass


class StaticChunkingSizes(Struct, kw_only=True, forbid_unknown_fields=True):
    max_chunk_size_tokens: Annotated[int, Meta(ge=100, le=4096)]
    chunk_overlap_tokens: Annotated[int, Meta(ge=0)]

    def __post_init__(self) -> None:
        if self.chunk_overlap_tokens * 2 > self.max_chunk_size_tokens:
            raise ValueError("`chunk_overlap_tokens` must not exceed half of "
                             "`max_chunk_size_tokens`")


class StaticChunking(Struct, tag_field="type", tag="static", forbid_unknown_fields=True):
    static: StaticChunkingSizes


class NewVectorStore(Struct, kw_only=True, forbid_unknown_fields=True, omit_defaults=True):
    """`tool_resources.file_search.vector_stores[]` of a thread create: kept in thread.json as
    given (no vector store is made here)."""
    file_ids: list[str] | UnsetType = UNSET
    chunking_strategy: AutoChunking | StaticChunking | UnsetType = UNSET
    metadata: Metadata | UnsetType | None = UNSET


class NewFileSearchResources(Struct, kw_only=True, forbid_unknown_fields=True,
                             omit_defaults=True):
    """A thread create's file search: the spec takes exactly one of the two."""
    vector_store_ids: Annotated[list[str], Meta(max_length=1)] | UnsetType = UNSET
    vector_stores: Annotated[list[NewVectorStore], Meta(max_length=1)] | UnsetType = UNSET

    def __post_init__(self) -> None:
        if (self.vector_store_ids is UNSET) == (self.vector_stores is UNSET):
            raise ValueError("expected exactly one of `vector_store_ids` and `vector_stores`")


class NewToolResources(Struct, kw_only=True, forbid_unknown_fields=True, omit_defaults=True):
    code_interpreter: CodeInterpreterResources | UnsetType = UNSET
    file_search: NewFileSearchResources | UnsetType = UNSET


class ToolResources(Struct, kw_only=True, forbid_unknown_fields=True, omit_defaults=True):
    code_interpreter: CodeInterpreterResources | UnsetType = UNSET
    file_search: FileSearchResources | UnsetType = UNSET


class ImageFile(Struct, kw_only=True, forbid_unknown_fields=True, omit_defaults=True):
    file_id: Annotated[str, Meta(min_length=1)]
    detail: Detail | UnsetType = UNSET


class ImageUrl(Struct, kw_only=True, forbid_unknown_fields=True, omit_defaults=True):
    url: Annotated[str, Meta(min_length=1)]  # a URI once stored (see output_content)
    detail: Detail | UnsetType = UNSET


class ImageFilePart(Struct, kw_only=True, tag_field="type", forbid_unknown_fields=True,
        tag="image_file"):
    image_file: ImageFile


class ImageUrlPart(Struct, kw_only=True, tag_field="type", forbid_unknown_fields=True,
        tag="image_url"):
    image_url: ImageUrl


# --- requests ------------------------------------------------------------------------------------


class TextInputPart(Struct, kw_only=True, tag_field="type", tag="text", forbid_unknown_fields=True):
    text: str


InputPart = TextInputPart | ImageUrlPart | ImageFilePart
InputContent = str | Annotated[list[InputPart], Meta(min_length=1)]


class CreateMessage(Struct, kw_only=True, forbid_unknown_fields=True):
    role: Role
    content: InputContent
    attachments: list[Attachment] | None = None
    metadata: Metadata | None = None


class CreateThread(Struct, kw_only=True, forbid_unknown_fields=True):
    messages: list[CreateMessage] = msgspec.field(default_factory=list)
    tool_resources: NewToolResources | None = None
    metadata: Metadata | None = None


class ModifyThread(Struct, kw_only=True, forbid_unknown_fields=True):
    tool_resources: ToolResources | UnsetType | None = UNSET
    metadata: ModifiedMetadata | UnsetType | None = UNSET


class IncompleteDetails(Struct, kw_only=True):
    reason: IncompleteReason


class IncompleteDetailsInput(Struct, kw_only=True, forbid_unknown_fields=True):
    reason: IncompleteReason


class ModifyMessage(Struct, kw_only=True, forbid_unknown_fields=True):
    """OpenAI allows `metadata`; the rest is Jan's extension for editing a message in place."""

    metadata: ModifiedMetadata | UnsetType | None = UNSET
    content: InputContent | UnsetType = UNSET
    status: Status | UnsetType = UNSET
    completed_at: Timestamp | UnsetType | None = UNSET
    incomplete_at: Timestamp | UnsetType | None = UNSET
    incomplete_details: IncompleteDetailsInput | UnsetType | None = UNSET


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

REQUEST_DECODERS: dict[type[Any], msgspec.json.Decoder[Any]] = {
    t: msgspec.json.Decoder(t) for t in (CreateMessage, CreateThread, ModifyThread, ModifyMessage)
}


def text_part(value: str) -> TextPart:
    return TextPart(text=TextValue(value=value, annotations=[]))


def output_content(content: str | list[InputPart], at: str = "") -> list[ContentPart]:
    """Request content (a string or input parts) as the parts a message object carries. An
    image URL is stored as a URI (see uris.py); one that is no URL is a validation error (at
    `$.<at>content[i]`: `at` is the message's place in the body, `messages[2].` in a thread
    create)."""
    if isinstance(content, str):
        return [text_part(content)]
    out: list[ContentPart] = []
    for i, p in enumerate(content):
        if isinstance(p, TextInputPart):
            out.append(text_part(p.text))
        elif isinstance(p, ImageUrlPart) and (uri := as_uri(p.image_url.url)) != p.image_url.url:
            if uri is None:
                raise msgspec.ValidationError(
                    "Expected a URL (an absolute URI, such as https://... or data:...) - at "
                    f"`$.{at}content[{i}].image_url.url`")
            out.append(ImageUrlPart(image_url=msgspec.structs.replace(p.image_url, url=uri)))
        else:
            out.append(p)
    return out
